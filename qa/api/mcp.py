"""`qa mcp`: an MCP server over stdio (the official `mcp` SDK) with two tools over the index.

- `search(query, k, sources, mode)`: passages with their source and exact offsets
  (`document_text(source)[start:end] == text`).
- `ask(question, k, mode, model)`: the checked answer, its refusal flag and its citations with
  their quotes.

Both call the same `Engine` as the chat and the HTTP API. A `model` is the name of a GGUF the
engine offers (`qa serve`'s `GET /v1/models`), never a path. The SDK keeps stdout for the
protocol: anything else written there goes to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from qa.config import K_MAX, Settings
from qa.engine import Engine
from qa.errors import QAError


class SearchHit(BaseModel):
    source: str
    start: int = Field(description="offset of the passage in the document's text")
    end: int
    page: int | None = None
    locator: dict[str, int | str] | None = Field(
        default=None, description="where in the file: page, slide, sheet and row, chapter, message"
    )
    text: str
    score: float


class SearchResult(BaseModel):
    query: str
    hits: list[SearchHit]


class CitationOut(BaseModel):
    n: int = Field(description="the [n] marker in the answer")
    source: str
    start: int
    end: int
    page: int | None = None
    locator: dict[str, int | str] | None = Field(
        default=None, description="where in the file: page, slide, sheet and row, chapter, message"
    )
    quote: str = Field(description="the exact cited text: document[start:end]")


class AskResult(BaseModel):
    answer: str
    refused: bool = Field(description="true when the documents do not answer the question")
    citations: list[CitationOut]
    query: str = Field(description="the standalone query the question was searched as")
    mode: str
    short: str | None = Field(default=None, description="a short direct answer, when known")


def build_server(engine: Engine):
    """The MCP server (not started) whose tools answer from `engine`."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer(
        "qa",
        instructions=(
            "Search and ask questions about the user's indexed documents. Answers cite exact "
            "spans of the documents; a refusal means the documents do not say."
        ),
    )

    def model_path(model: str | None) -> Path | None:
        if not model:
            return None
        offered = engine.models()
        if model not in offered:
            names = ", ".join(offered) or "none"
            raise ToolError(f"unknown model {model!r}: use one of: {names}")
        return offered[model]

    @server.tool()
    def search(
        query: str,
        k: Annotated[int, Field(ge=1, le=K_MAX, description="passages to return")] = 5,
        sources: list[str] | None = None,
        mode: Literal["hybrid", "dense", "bm25"] = "hybrid",
    ) -> SearchResult:
        """Find the passages of the indexed documents that best match `query`, each with its
        source file and exact character offsets."""
        try:
            hits = engine.search(query, k, sources=sources or None, mode=mode)
        except QAError as exc:
            raise ToolError(str(exc)) from None
        return SearchResult(
            query=query,
            hits=[
                SearchHit(
                    source=h.source,
                    start=h.start,
                    end=h.end,
                    page=h.page,
                    locator=h.locator.to_dict() if h.locator is not None else None,
                    text=h.text,
                    score=h.score,
                )
                for h in hits
            ],
        )

    @server.tool()
    def ask(
        question: str,
        k: Annotated[int | None, Field(ge=1, le=K_MAX, description="passages to read")] = None,
        mode: Literal["extractive", "llm"] | None = None,
        model: Annotated[str | None, Field(description="a GGUF file name on offer")] = None,
    ) -> AskResult:
        """Answer `question` from the indexed documents only, with numbered citations of the
        exact sentences the answer rests on (or a refusal if the documents do not say)."""
        try:
            path = model_path(model)
            answer = engine.ask(question, k=k, mode=mode, model=path)
        except QAError as exc:
            raise ToolError(str(exc)) from None
        return AskResult(
            answer=answer.text,
            refused=answer.refused,
            citations=[CitationOut(**c.to_dict()) for c in answer.citations],
            query=answer.query,
            mode=answer.mode,
            short=answer.short.text if answer.short is not None else None,
        )

    return server


def run(settings: Settings | None = None) -> None:
    """Serve the MCP tools over stdio until the client closes the connection."""
    engine = Engine(settings or Settings.load())
    engine.status()  # a missing or damaged index is one line now, not a failed tool call
    try:
        build_server(engine).run("stdio")
    finally:
        engine.close()
