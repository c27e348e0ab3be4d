"""Who may call the API: a Bearer key when one is set, and no keyless API off loopback.

The API and the chat are guarded separately: the chat's login (`--auth`) opens only the
page, and the API key (`--api-key`, `QA_API_KEY`) only `/v1`. Off loopback an API key is
required unless the operator passes `--insecure` (as `qa.web.security.check_exposure` does
for the chat's login).
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from qa.api.errors import error_body, send_json
from qa.config import Settings
from qa.errors import BadInput
from qa.web.security import is_loopback


def check_key(key: str) -> str:
    """`key`, checked as `Settings` checks QA_API_KEY."""
    try:
        Settings(api_key=key)
    except BadInput:
        raise BadInput("the API key must be non-empty printable ASCII without spaces") from None
    return key


def check_api_exposure(
    host: str, api_key: str | None, insecure: bool = False, settings: Settings | None = None
) -> str | None:
    """The key every API call must carry (`api_key`, else the settings' QA_API_KEY), or None.
    Serving the API on a non-loopback address without a key is refused unless `insecure`."""
    key = check_key(api_key) if api_key else (settings or Settings.load()).api_key
    if key is None and not insecure and not is_loopback(host):
        raise BadInput(
            f"serving on {host} would expose the API (/v1) to the network: set a key with "
            "--api-key KEY (or QA_API_KEY=KEY), or pass --insecure"
        )
    return key


class BearerAuth:
    """ASGI middleware: with a key, every request must carry `Authorization: Bearer KEY`
    (compared in constant time); otherwise a 401 in the OpenAI shape."""

    def __init__(self, app: ASGIApp, key: str | None) -> None:
        self.app = app
        self.key = key.encode() if key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.key is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                header = value
                break
        scheme, _, given = header.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.key):
            await self.app(scope, receive, send)
            return
        message = (
            "missing API key: send the header `Authorization: Bearer KEY`"
            if not header
            else "invalid API key"
        )
        body = json.dumps(error_body(message, code="invalid_api_key"))
        await send_json(send, 401, body, {"WWW-Authenticate": "Bearer"})
