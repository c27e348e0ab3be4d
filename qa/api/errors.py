"""Errors in the OpenAI shape, `{"error": {"message", "type", "code"}}`, never a traceback.

The API's own errors are `ApiError` subclasses (`QAError`s with an HTTP status). The engine's
errors keep their classes and are mapped here, at the edge: `BadInput` is a 400, a locked
index a 409, any other `QAError` a 500 with its one-line message. A request body that does
not validate is a 400 naming the field; an unknown path a 404; anything unexpected a 500
with a one-line message, logged with its traceback on the server only.
"""

from __future__ import annotations

import json
import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.errors import BadInput, IndexLocked, QAError

log = logging.getLogger("qa.api")

INVALID_REQUEST = "invalid_request_error"  # OpenAI's type for every client error
SERVER_ERROR = "server_error"


class ApiError(QAError):
    """An error with an HTTP status and an OpenAI error code."""

    status = 400
    type = INVALID_REQUEST
    code = "invalid_request"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class Unauthorized(ApiError):
    status = 401
    code = "invalid_api_key"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class TooLarge(ApiError):
    status = 413
    code = "file_too_large"


def error_body(message: str, type_: str = INVALID_REQUEST, code: str | None = None) -> dict:
    """The OpenAI error object (also what a stream sends as its last event on failure)."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def error_response(
    status: int, message: str, type_: str = INVALID_REQUEST, code=None, headers=None
):
    return JSONResponse(error_body(message, type_, code), status_code=status, headers=headers)


def describe(exc: BaseException) -> tuple[int, str, str, str]:
    """(status, message, type, code) for an error raised while answering a request."""
    if isinstance(exc, ApiError):
        return exc.status, str(exc), exc.type, exc.code
    if isinstance(exc, BadInput):
        return 400, str(exc), INVALID_REQUEST, "invalid_value"
    if isinstance(exc, IndexLocked):
        return 409, str(exc), INVALID_REQUEST, "index_locked"
    if isinstance(exc, QAError):
        # IndexNotFound -> "index_not_found": the class names the problem
        return (
            500,
            str(exc),
            SERVER_ERROR,
            re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower(),
        )
    return 500, internal_message(exc), SERVER_ERROR, "internal_error"


def internal_message(exc: BaseException) -> str:
    return f"internal error ({type(exc).__name__}); the server is still running, try again"


def _validation_message(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "the request body is not valid"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def install(app: FastAPI) -> None:
    """Turn every error the app can meet into an OpenAI-shaped JSON response."""

    async def on_qa_error(request: Request, exc: Exception) -> JSONResponse:
        status, message, type_, code = describe(exc)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, message)
        return error_response(status, message, type_, code)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, _validation_message(exc), code="invalid_request")

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        if status == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        type_ = SERVER_ERROR if status >= 500 else INVALID_REQUEST
        return error_response(status, message, type_, code=None, headers=exc.headers)

    app.add_exception_handler(QAError, on_qa_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_middleware(CatchAll)


class CatchAll:
    """ASGI middleware: an unexpected exception becomes a 500 in the OpenAI shape (or, if the
    response had started, ends it) and is logged once; it never reaches the client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:
                return
            body = json.dumps(error_body(internal_message(exc), SERVER_ERROR, "internal_error"))
            await send_json(send, 500, body)


async def send_json(send: Send, status: int, body: str, headers: dict[str, str] | None = None):
    raw: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    data = body.encode()
    raw.append((b"content-length", str(len(data)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})
