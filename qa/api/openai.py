"""The OpenAI-compatible HTTP API over one `Engine`, served under `/v1` beside the chat.

    GET    /v1/models                  the extractive reader and each GGUF on offer
    GET    /v1/models/{id}
    POST   /v1/chat/completions        an answer (or, with "stream": true, server-sent events)
    POST   /v1/search                  passages with exact offsets
    GET    /v1/documents               the indexed documents
    POST   /v1/documents               upload files (multipart, field "file"), then index them
    GET    /v1/documents/{source}      one document and its text (what offsets point into)
    DELETE /v1/documents/{source}      remove a document (and its file, if uploaded here)

An answer's citations come twice: as `[n]` markers in `content`, and as
`choices[0].message.citations = [{n, source, start, end, page, locator, quote}]` (in a stream, in the
last chunk's `delta`). `engine.document_text(source)[start:end] == quote` for each one. A
refusal is a normal answer with `refused: true`.

A stream sends the model's unchecked text as it is generated in `delta.draft` (llm mode),
then the checked answer in `delta.content`, so the concatenated content always carries markers
that match its citations; then `data: [DONE]`. A client that drops the stream stops the
generation at once (the engine's stream is closed as soon as the server notices).

The handlers call only the engine's public methods. Blocking work runs in worker threads.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from qa.api import errors
from qa.api.auth import BearerAuth
from qa.api.errors import ApiError, NotFound, TooLarge
from qa.api.schemas import (
    EXTRACTIVE,
    ChatCompletionRequest,
    SearchRequest,
    answer_fields,
    hit_dict,
    timings_of,
)
from qa.engine import Engine
from qa.records import Answer
from qa.web.files import inside, safe_filename, stage_uploads

log = logging.getLogger("qa.api")

# One upload request carries at most this many files (each within the per-file cap), so the
# body a client may send is bounded: MAX_UPLOAD_FILES * cap + MULTIPART_OVERHEAD bytes.
MAX_UPLOAD_FILES = 20
MULTIPART_OVERHEAD = 1_000_000  # boundaries and part headers: generous, never near a file
COPY_CHUNK = 1 << 20  # bytes per read when saving an upload


def create_app(
    engine: Engine,
    *,
    api_key: str | None = None,
    upload_dir: str | Path | None = None,
    max_upload_bytes: int | None = None,
) -> FastAPI:
    """The API application, to be mounted at `/v1` (its routes are `/models`, ...).
    `upload_dir` and `max_upload_bytes` default to the chat's: `<index parent>/uploads` and
    `QA_MAX_UPLOAD_MB`."""
    api = OpenAIApi(engine, upload_dir=upload_dir, max_upload_bytes=max_upload_bytes)
    app = FastAPI(title="qa", docs_url=None, redoc_url=None, openapi_url=None)
    errors.install(app)
    app.add_middleware(BearerAuth, key=api_key)  # outermost: no key, no other work
    app.include_router(api.router())
    app.state.qa = api
    return app


class OpenAIApi:
    """The handlers, over one engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        upload_dir: str | Path | None = None,
        max_upload_bytes: int | None = None,
    ) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.upload_dir = Path(upload_dir or engine.index_dir.resolve().parent / "uploads")
        if max_upload_bytes is None:  # the chat's cap: QA_MAX_UPLOAD_MB, in (decimal) MB
            max_upload_bytes = int(self.settings.max_upload_mb * 1_000_000)
        self.max_upload_bytes = int(max_upload_bytes)

    def router(self) -> APIRouter:
        r = APIRouter()
        r.add_api_route("/models", self.list_models, methods=["GET"])
        r.add_api_route("/models/{model_id:path}", self.get_model, methods=["GET"])
        r.add_api_route("/chat/completions", self.chat_completions, methods=["POST"])
        r.add_api_route("/search", self.search, methods=["POST"])
        r.add_api_route("/documents", self.list_documents, methods=["GET"])
        r.add_api_route("/documents", self.upload, methods=["POST"])
        r.add_api_route("/documents/{source:path}", self.get_document, methods=["GET"])
        r.add_api_route("/documents/{source:path}", self.delete_document, methods=["DELETE"])
        return r

    # --- models ---------------------------------------------------------------------------

    def _models(self) -> list[dict[str, Any]]:
        default = EXTRACTIVE if self.settings.mode == "extractive" else self.settings.model.name
        # "created" is a Unix time in OpenAI's schema: the file's for a GGUF; the extractive
        # reader is part of qa itself and has none, so 0.
        out = [_model(EXTRACTIVE, 0, "extractive", default == EXTRACTIVE)]
        for name, path in self.engine.models().items():
            try:
                created = int(path.stat().st_mtime)
            except OSError:
                created = 0
            out.append(_model(name, created, "llm", name == default))
        return out

    def list_models(self) -> dict[str, Any]:
        return {"object": "list", "data": self._models()}

    def get_model(self, model_id: str) -> dict[str, Any]:
        for m in self._models():
            if m["id"] == model_id:
                return m
        raise _unknown_model(model_id)

    def resolve_model(self, model: str | None) -> tuple[str, str, Path | None]:
        """(model id, answer mode, GGUF path) for a request's `model`. A name is looked up
        only among the files `engine.models()` offers: it is never taken as a path."""
        if model is None:
            if self.settings.mode == "extractive":
                return EXTRACTIVE, "extractive", None
            return self.settings.model.name, "llm", None
        if model == EXTRACTIVE:
            return EXTRACTIVE, "extractive", None
        offered = self.engine.models()
        if model in offered:
            return model, "llm", offered[model]
        raise _unknown_model(model)

    # --- answers --------------------------------------------------------------------------

    def _prepare(self, body: ChatCompletionRequest) -> tuple[str, str, list, dict[str, Any]]:
        """(model id, question, history, engine options), all checked."""
        model_id, mode, path = self.resolve_model(body.model)
        turns = [m for m in body.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1].role != "user":
            raise ApiError("the last message must be the user's question", "invalid_messages")
        question = turns[-1].text().strip()
        if not question:
            raise ApiError("the question (the last user message) is empty", "invalid_messages")
        history = _history(turns[:-1])
        max_tokens = body.max_completion_tokens or body.max_tokens
        options: dict[str, Any] = {
            "k": body.k,
            "mode": mode,
            "model": path,
            "temperature": body.temperature,
            "max_tokens": max_tokens,
        }
        self.engine.request(**options)  # raises BadInput (400) before anything starts
        return model_id, question, history, options

    async def chat_completions(self, body: ChatCompletionRequest):
        model_id, question, history, options = await run_in_threadpool(self._prepare, body)
        if not body.stream:
            answer = await run_in_threadpool(lambda: self.engine.ask(question, history, **options))
            return _completion(model_id, answer)
        stream = await run_in_threadpool(
            lambda: self.engine.ask_stream(question, history, **options)
        )
        try:  # the first item, so an error at the start is a proper status, not an event
            first = await run_in_threadpool(next, stream, None)
        except BaseException:
            await _close(stream)
            raise
        return EventStream(
            _events(stream, first, model_id, draft=options["mode"] == "llm"),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # --- search and documents ---------------------------------------------------------------

    def _known(self) -> dict[str, Any]:
        return {d.source: d for d in self.engine.documents()}

    def search(self, body: SearchRequest) -> dict[str, Any]:
        if body.sources:
            known = self._known()
            for source in body.sources:
                if source not in known:
                    raise _unknown_document(source)
        hits = self.engine.search(body.query, body.k, sources=body.sources, mode=body.mode)
        return {"object": "list", "query": body.query, "data": [hit_dict(h) for h in hits]}

    def list_documents(self) -> dict[str, Any]:
        return {"object": "list", "data": [_document(d) for d in self.engine.documents()]}

    def get_document(self, source: str) -> dict[str, Any]:
        doc = self._known().get(source)
        if doc is None:
            raise _unknown_document(source)
        return {**_document(doc), "text": self.engine.document_text(source)}

    def delete_document(self, source: str) -> dict[str, Any]:
        if source not in self._known():
            raise _unknown_document(source)
        removed = self.engine.remove(source)
        for s in removed:
            path = self.engine.path_for(s)
            if inside(path, self.upload_dir):
                path.unlink(missing_ok=True)
        return {"object": "list", "deleted": removed}

    async def upload(self, request: Request) -> dict[str, Any]:
        """Index uploaded files: multipart/form-data, one or more parts named `file`. Each is
        checked and saved as the chat saves uploads (size cap, sanitised name, supported
        type). Any file over the cap: 413 and nothing is indexed."""
        cap = self.max_upload_bytes
        limit = MAX_UPLOAD_FILES * cap + MULTIPART_OVERHEAD
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise TooLarge(f"the upload is {int(length) / 1e6:.1f} MB: {_cap_rule(cap)}")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiError("send the files as multipart/form-data, one part named `file` each")
        parser = MultiPartParser(
            request.headers,
            _limited(request.stream(), limit, cap),
            max_files=MAX_UPLOAD_FILES,
            max_fields=MAX_UPLOAD_FILES,
        )
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise ApiError(f"the multipart body is not valid: {exc.message}") from None
        try:
            files = [v for k, v in form.multi_items() if k == "file" and isinstance(v, UploadFile)]
            if not files:
                raise ApiError("no files: send each file as a multipart part named `file`")
            for f in files:
                if (f.size or 0) > cap:
                    raise TooLarge(
                        f"{safe_filename(f.filename or '')} is too large: {_cap_rule(cap)}"
                    )
            with tempfile.TemporaryDirectory(prefix="qa-upload-") as tmp:
                paths = [await _save(f, Path(tmp) / str(i)) for i, f in enumerate(files)]
                return await run_in_threadpool(self._index_uploads, paths)
        finally:
            await form.close()

    def _index_uploads(self, paths: list[Path]) -> dict[str, Any]:
        engine = self.engine
        staged = stage_uploads(paths, self.upload_dir, self.max_upload_bytes)
        results = [
            {"name": r.name, "source": None, "outcome": r.outcome, "detail": r.detail}
            for r in staged.refused
        ]
        if staged.paths:
            report = engine.index_files(staged.paths, add_only=True)
            names = {engine.source_for(p): staged.names[str(p)] for p in staged.paths}
            chunks = {d.source: d.chunks for d in engine.documents()}
            for outcome, sources in (
                ("indexed", report.added),
                ("updated", report.updated),
                ("unchanged", report.unchanged),
            ):
                for source in sources:
                    results.append(
                        {
                            "name": names.get(source, source),
                            "source": source,
                            "outcome": outcome,
                            "detail": "",
                            "chunks": chunks.get(source),
                        }
                    )
            for skip in report.skipped:
                results.append(
                    {
                        "name": names.get(skip.source, skip.source),
                        "source": None,
                        "outcome": "failed" if skip.failed else "skipped",
                        "detail": skip.reason,
                    }
                )
                if skip.source not in chunks:  # not indexed: do not keep the file
                    engine.path_for(skip.source).unlink(missing_ok=True)
        kept = [r for r in results if r["outcome"] in ("indexed", "updated", "unchanged")]
        if not kept:
            reasons = "; ".join(f"{r['name']}: {r['detail']}" for r in results)
            raise ApiError(f"nothing was indexed ({reasons})", "nothing_indexed")
        return {"object": "list", "data": results}


# --- helpers ------------------------------------------------------------------------------


def _model(model_id: str, created: int, mode: str, default: bool) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": "qa",
        "mode": mode,
        "default": default,
    }


def _unknown_model(model: str) -> NotFound:
    return NotFound(
        f"unknown model {model!r}: GET /v1/models lists the ones on offer", "model_not_found"
    )


def _unknown_document(source: str) -> NotFound:
    return NotFound(
        f"{source!r} is not in the index: GET /v1/documents lists them", "document_not_found"
    )


def _document(d) -> dict[str, Any]:
    return {
        "source": d.source,
        "title": d.title,
        "chunks": d.chunks,
        "size": d.size,
        "sha256": d.sha256,
        "mtime": d.mtime,
    }


def _cap_rule(cap: int) -> str:
    return (
        f"the limit is {cap / 1e6:g} MB per file (QA_MAX_UPLOAD_MB), "
        f"at most {MAX_UPLOAD_FILES} files per request"
    )


def _history(messages) -> list:
    """Earlier turns as `qa.Turn(question, answer, query)`: each user message with the
    assistant message that follows it (if any), and the standalone query it was asked as,
    rewritten from the turns before it, so a follow-up of a follow-up keeps its context (as
    the chat's answers carry their `query`)."""
    from qa import Turn
    from qa.answer.followup import rewrite

    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for m in messages:
        if m.role == "user":
            if pending is not None:
                pairs.append((pending, ""))
            pending = m.text()
        elif pending is not None:
            pairs.append((pending, m.text()))
            pending = None
    if pending is not None:
        pairs.append((pending, ""))
    turns: list = []
    for question, answer in pairs:
        turns.append(Turn(question, answer, rewrite(question, turns)))
    return turns


def _completion(model_id: str, answer: Answer) -> dict[str, Any]:
    message = {
        "role": "assistant",
        "content": answer.text,
        "refusal": answer.text if answer.refused else None,
        **answer_fields(answer),
    }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "timings": timings_of(answer),
    }


def _sse(data: dict[str, Any] | str) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n"


async def _close(stream: Iterator) -> None:
    """Close the engine's stream (stops generation, releases the model), even when the
    request is being cancelled."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(stream.close)


async def _events(
    stream: Iterator, first: object, model_id: str, *, draft: bool
) -> AsyncIterator[str]:
    """The OpenAI chunk events of one streamed answer, then `[DONE]`."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return _sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model_id,
                "choices": [choice],
                **extra,
            }
        )

    try:
        yield chunk({"role": "assistant", "content": ""})
        item, final = first, None
        while item is not None:
            if isinstance(item, Answer):
                final = item
                break
            if draft:
                yield chunk({"draft": item})
            item = await anyio.to_thread.run_sync(next, stream, None)
        if final is None:
            yield _sse(
                errors.error_body("the answer ended before it was checked", errors.SERVER_ERROR)
            )
        else:
            yield chunk({"content": final.text})
            fields = answer_fields(final)
            fields["refusal"] = final.text if final.refused else None
            yield chunk(fields, "stop", timings=timings_of(final))
    except Exception as exc:  # the status is sent already: the error is the last event
        status, message, type_, code = errors.describe(exc)
        if status >= 500:
            log.error("streamed answer failed: %s", message, exc_info=not isinstance(exc, ApiError))
        yield _sse(errors.error_body(message, type_, code))
    finally:
        await _close(stream)
    yield _sse("[DONE]")


class EventStream(StreamingResponse):
    """A streaming response that always closes its event generator, so the engine's stream
    is closed however the response ends (finished, failed, or the client gone)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


async def _limited(chunks: AsyncIterator[bytes], limit: int, cap: int) -> AsyncIterator[bytes]:
    """The request body, cut off with a 413 once it is over `limit` bytes."""
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"the upload is over {limit / 1e6:.0f} MB: {_cap_rule(cap)}")
        yield chunk


async def _save(upload: UploadFile, folder: Path) -> Path:
    """The uploaded file written to `folder` under its sanitised name."""
    folder.mkdir()
    dest = folder / safe_filename(upload.filename or "")
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while data := await upload.read(COPY_CHUNK):
            out.write(data)
    return dest
