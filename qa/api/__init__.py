"""Machine faces of the engine: an OpenAI-compatible HTTP API and an MCP server.

`qa.api.openai.create_app(engine, api_key=...)` is the FastAPI application served under
`/v1` beside the browser chat (`qa serve`); `qa.api.mcp` is `qa mcp`, the same engine's
`search` and `ask` as MCP tools over stdio. Both call only `qa.Engine`'s public methods.
"""

from __future__ import annotations

__all__ = ["check_api_exposure", "create_app"]


def __getattr__(name: str):
    # imported on first use: `qa --help` must not pay for FastAPI
    if name == "create_app":
        from qa.api.openai import create_app

        return create_app
    if name == "check_api_exposure":
        from qa.api.auth import check_api_exposure

        return check_api_exposure
    raise AttributeError(f"module 'qa.api' has no attribute {name!r}")
