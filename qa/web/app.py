"""The browser chat: a Gradio app over one index and one local model.

    python app.py                 # http://127.0.0.1:7860
    qa serve --port 8080

`build_app(settings)` makes the Gradio Blocks; `serve(...)` builds and runs it. The UI holds
no retrieval or answer logic: answers come from `qa.answer.ask_stream`, documents from the
`Index`. One `Index` object and one loaded model serve every browser session; Gradio's queue
runs the requests, the index locks itself, and the model's generator serialises generation.
Each session keeps its own conversation (a `gr.State`).

Safety: every text from a document or the model is HTML-escaped (`qa.ui_render`); nothing
is fetched from outside (system fonts, no analytics, no share links); serving on an address
other than loopback needs a password (`auth="user:password"` or `QA_AUTH`) unless
`insecure=True`.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from qa.config import PROJECT_ROOT, Settings
from qa.errors import BadInput, QAError
from qa.index.core import Index
from qa.records import Answer
from qa.web.assets import CHAT_JS, CSS
from qa.web.files import DEFAULT_MAX_UPLOAD_MB, inside, stage_uploads
from qa.web.render import (
    ANSWERED,
    FAILED,
    REFUSED,
    STOPPED,
    ChatTurn,
    FileResult,
    documents_html,
    report_html,
    source_views,
    sources_html,
    transcript_html,
)

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_K = 20
MAX_TEMPERATURE = 1.5
MODES = {"Model": "llm", "Extractive": "extractive"}
CHAT_CONCURRENCY = 2  # answers in flight at once (generation itself is one at a time)

AskStream = Callable[..., Iterator[str | Answer]]


# --- exposure and authentication ---------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(auth: str) -> tuple[str, str]:
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise BadInput("authentication must be given as USER:PASSWORD (both non-empty)")
    return user, password


def check_exposure(host: str, auth: str | None, insecure: bool = False) -> tuple[str, str] | None:
    """The (user, password) the app must ask for, or None. Serving on a non-loopback address
    without a password is refused unless `insecure`."""
    auth = auth or os.environ.get("QA_AUTH") or None
    credentials = parse_auth(auth) if auth else None
    if credentials is None and not insecure and not is_loopback(host):
        raise BadInput(
            f"serving on {host} would expose your documents to the network: set a password "
            "with --auth USER:PASSWORD (or QA_AUTH=USER:PASSWORD), or pass --insecure"
        )
    return credentials


# --- a readers-writer lock: answers read the index object, a rebuild replaces it ---------


class _RWLock:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def read(self):
        with self._cond:
            while self._writing:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            while self._writing:
                self._cond.wait()
            self._writing = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def _no_progress(*args, **kwargs) -> None:
    pass


# --- the application -----------------------------------------------------------------


class ChatApp:
    """The state shared by every browser session, and the handlers of the UI's events.

    The handlers are plain methods returning plain values (HTML strings, lists of
    `ChatTurn`), so they can be tested without a browser."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        index: Index | None = None,
        upload_dir: str | Path | None = None,
        max_upload_mb: float | None = None,
        models_dirs: Sequence[str | Path] | None = None,
        ask: AskStream | None = None,
    ) -> None:
        self.settings = settings or Settings.load()
        self.index = index or Index.open(
            self.settings.index_dir, settings=self.settings, create=True
        )
        self.upload_dir = Path(upload_dir or self.index.directory.resolve().parent / "uploads")
        if max_upload_mb is None:
            raw = os.environ.get("QA_MAX_UPLOAD_MB")
            try:
                max_upload_mb = float(raw) if raw else DEFAULT_MAX_UPLOAD_MB
            except ValueError:
                raise BadInput(f"QA_MAX_UPLOAD_MB={raw!r} is not a number") from None
        if max_upload_mb <= 0:
            raise BadInput(f"the upload size limit must be positive, got {max_upload_mb} MB")
        self.max_upload_bytes = int(max_upload_mb * 1_000_000)
        if models_dirs is None:
            models_dirs = [self.settings.model.parent, PROJECT_ROOT / "models"]
        self.models_dirs = [Path(d) for d in models_dirs]
        if ask is None:
            from qa.answer.pipeline import ask_stream as ask
        self._ask = ask
        self._rw = _RWLock()
        self._stops: dict[str, threading.Event] = {}
        self._stops_lock = threading.Lock()
        self._turn_ids = itertools.count(1)

    # --- models ---------------------------------------------------------------------

    def models(self) -> dict[str, Path]:
        """The GGUF files the settings may choose from, by file name."""
        found: dict[str, Path] = {}
        configured = self.settings.model
        if configured.is_file():
            found[configured.name] = configured
        for folder in self.models_dirs:
            if folder.is_dir():
                for path in sorted(folder.glob("*.gguf")):
                    found.setdefault(path.name, path)
        return found

    @property
    def default_mode(self) -> str:
        """The mode the settings choose (QA_MODE), as the radio button names it."""
        return next(name for name, value in MODES.items() if value == self.settings.mode)

    def default_model_name(self) -> str:
        return self.settings.model.name

    def resolve_model(self, name: str | None) -> Path:
        if not name:
            return self.settings.model
        models = self.models()
        if name not in models:
            raise BadInput(f"unknown model {name!r}: choose one of the files in models/")
        return models[name]

    # --- chat -----------------------------------------------------------------------------

    def _stop_event(self, session: str) -> threading.Event:
        with self._stops_lock:
            event = self._stops.get(session)
            if event is None:
                event = self._stops[session] = threading.Event()
            return event

    def stop(self, session: str) -> None:
        """Ask the session's answer in progress to stop after its current token."""
        self._stop_event(session).set()

    def respond(
        self,
        question: str,
        turns: list[ChatTurn] | None,
        k: float | None = None,
        mode: str | None = None,
        model_name: str | None = None,
        temperature: float | None = None,
        session: str = "",
    ) -> Iterator[tuple[str, list[ChatTurn], str, str]]:
        """Answer `question`, yielding (question box, turns, transcript, sources) as the
        answer streams in. An empty question changes nothing."""
        turns = list(turns or [])
        question = (question or "").strip()
        if not question:
            yield "", list(turns), transcript_html(turns), sources_html(turns)
            return
        stop = self._stop_event(session)
        stop.clear()
        turn = ChatTurn(next(self._turn_ids), question)
        turns.append(turn)
        yield "", list(turns), transcript_html(turns), sources_html(turns)
        pieces: list[str] = []
        final = None
        stream = None
        try:
            settings, k_value, model, mode_value = self._request_settings(
                k, mode, model_name, temperature
            )
            history = [t.answer for t in turns[:-1] if t.answer is not None]
            with self._rw.read():
                index = self.index
                stream = self._ask(
                    question,
                    index=index,
                    history=history,
                    k=k_value,
                    model=model,
                    mode=mode_value,
                    settings=settings,
                )
                for item in stream:
                    if stop.is_set():
                        break
                    if isinstance(item, Answer):
                        final = item
                        break
                    pieces.append(item)
                    turns[-1] = replace(turns[-1], text="".join(pieces))
                    yield "", list(turns), transcript_html(turns), sources_html(turns)
                if final is not None:
                    views = source_views(final, index.document_text)
            if final is None:
                turns[-1] = replace(
                    turns[-1],
                    text="".join(pieces),
                    status=STOPPED,
                    note="stopped before the answer was checked against the sources",
                )
            else:
                turns[-1] = replace(
                    turns[-1],
                    text=final.text,
                    status=REFUSED if final.refused else ANSWERED,
                    sources=views,
                    answer=final,
                    note=_note(final),
                )
        except QAError as exc:
            turns[-1] = replace(turns[-1], status=FAILED, note=str(exc))
        except Exception as exc:  # one failed request must not take the app down
            log.exception("answering %r failed", question)
            turns[-1] = replace(
                turns[-1],
                status=FAILED,
                note=f"internal error ({type(exc).__name__}: {exc}); the app is still running, "
                "try again",
            )
        finally:
            if stream is not None and hasattr(stream, "close"):
                stream.close()
        yield "", list(turns), transcript_html(turns), sources_html(turns)

    def _request_settings(self, k, mode, model_name, temperature):
        mode_value = self.settings.mode if mode is None else MODES.get(mode, mode)
        if mode_value not in MODES.values():
            raise BadInput(f"unknown answer mode {mode!r}: use Model or Extractive")
        k_value = self.settings.k if k is None else int(k)
        if not 1 <= k_value <= MAX_K:
            raise BadInput(f"top-k must be between 1 and {MAX_K}, got {k_value}")
        changes: dict[str, Any] = {"k": k_value}
        if temperature is not None:
            t = float(temperature)
            if not 0.0 <= t <= MAX_TEMPERATURE:
                raise BadInput(f"temperature must be between 0 and {MAX_TEMPERATURE}, got {t}")
            changes["temperature"] = t
        model = self.resolve_model(model_name) if mode_value == "llm" else None
        settings = self.settings.with_(**changes)
        if model is not None:
            settings = settings.with_(model=model)
        return settings, k_value, model, mode_value

    def clear(self, session: str = "") -> tuple[str, list[ChatTurn], str, str]:
        self.stop(session)
        return "", [], transcript_html([]), sources_html([])

    # --- documents ------------------------------------------------------------------

    def document_sources(self) -> list[str]:
        with self._rw.read():
            return [d.source for d in self.index.documents()]

    def documents_view(self) -> str:
        with self._rw.read():
            return documents_html(self.index.documents())

    def upload(self, files: Sequence[str | Path] | None, progress=_no_progress) -> str:
        """Index uploaded files; return the per-file report (HTML)."""
        files = [f for f in (files or []) if f]
        if not files:
            return report_html([], "No files chosen.")
        staged = stage_uploads(files, self.upload_dir, self.max_upload_bytes)
        results: list[FileResult] = list(staged.refused)
        summary = ""
        if staged.paths:
            progress(0.0, desc="Reading files")

            def on_progress(event: str, n: int, total: int | None) -> None:
                if event == "files" and total:
                    progress((n, total), desc=f"Indexing files ({n}/{total})", unit="files")
                elif event == "embed" and total:
                    progress(None, desc=f"Embedding {total} passages")

            try:
                with self._rw.read():
                    index = self.index
                    report = index.add(staged.paths, progress=on_progress)
                    names = {index.source_for(p): staged.names[str(p)] for p in staged.paths}
                    chunks = {d.source: d.chunks for d in index.documents()}
            except QAError as exc:
                return report_html(results, f"Indexing failed: {exc}")
            for source in report.added:
                results.append(
                    FileResult(names.get(source, source), "indexed", _chunks(chunks, source))
                )
            for source in report.updated:
                results.append(
                    FileResult(names.get(source, source), "updated", _chunks(chunks, source))
                )
            for source in report.unchanged:
                results.append(
                    FileResult(names.get(source, source), "unchanged", "already indexed")
                )
            for skip in report.skipped:
                results.append(
                    FileResult(
                        names.get(skip.source, skip.source),
                        "failed" if skip.failed else "skipped",
                        skip.reason,
                    )
                )
                if skip.source not in chunks:  # not indexed: do not keep the file
                    index.path_for(skip.source).unlink(missing_ok=True)
            summary = (
                f"{len(report.added)} indexed, {len(report.updated)} updated, "
                f"{len(report.unchanged)} unchanged, "
                f"{len(results) - len(report.added) - len(report.updated) - len(report.unchanged)}"
                f" not indexed; {report.chunks_embedded} passages embedded in "
                f"{report.seconds:.1f} s"
            )
        else:
            summary = "Nothing was indexed."
        return report_html(results, summary)

    def delete(self, source: str | None) -> str:
        """Remove a document from the index (and its file, if it was uploaded here)."""
        if not source:
            return report_html([], "Choose a document to delete.")
        try:
            with self._rw.read():
                index = self.index
                removed = index.remove(source)
                for s in removed:
                    path = index.path_for(s)
                    if inside(path, self.upload_dir):
                        path.unlink(missing_ok=True)
        except QAError as exc:
            return report_html([], f"Could not delete {source}: {exc}")
        return report_html([FileResult(s, "removed") for s in removed], "Removed from the index.")

    def rebuild(self, progress=_no_progress) -> str:
        """Delete the index and index again every file and folder it was built from."""
        from qa.index.core import clear

        progress(0.0, desc="Rebuilding the index")

        def on_progress(event: str, n: int, total: int | None) -> None:
            if event == "files" and total:
                progress((n, total), desc=f"Indexing files ({n}/{total})", unit="files")

        with self._rw.write():
            old = self.index
            roots = [r for r in old.roots() if r.exists()]
            uploads = self.upload_dir
            if (
                uploads.is_dir()
                and any(uploads.iterdir())
                and not any(inside(uploads, r) for r in roots if r.is_dir())
            ):
                roots.append(uploads)
            directory, settings, embedder = old.directory, old.settings, old.embedder
            old.close()
            try:
                clear(directory)
                new = Index.open(directory, settings=settings, embedder=embedder, create=True)
            except QAError as exc:
                self.index = Index.open(directory, settings=settings, embedder=embedder)
                return report_html([], f"Rebuild failed: {exc}")
            self.index = new
            if not roots:
                return report_html([], "The index is empty: there was nothing to index again.")
            try:
                report = new.add(roots, progress=on_progress)
            except QAError as exc:
                return report_html([], f"Rebuild failed while indexing: {exc}")
        return report_html(
            [
                FileResult(s.source, "failed" if s.failed else "skipped", s.reason)
                for s in report.skipped
            ],
            f"Rebuilt: {len(report.added)} documents, {report.chunks_embedded} passages "
            f"in {report.seconds:.1f} s",
        )

    # --- the Gradio app ----------------------------------------------------------------

    def build(self):
        """The Gradio Blocks of the app (not launched)."""
        import gradio as gr

        models = list(self.models())
        default_model = self.default_model_name()
        if default_model not in models and models:
            default_model = models[0]

        def session_of(request: gr.Request | None) -> str:
            return getattr(request, "session_hash", None) or ""

        def on_ask(question, turns, k, mode, model_name, temperature, request: gr.Request):
            yield from self.respond(
                question, turns, k, mode, model_name, temperature, session_of(request)
            )

        def on_stop(request: gr.Request):
            self.stop(session_of(request))

        def on_clear(request: gr.Request):
            return self.clear(session_of(request))

        for fn in (on_ask, on_stop, on_clear):  # real classes: this module's annotations are str
            fn.__annotations__["request"] = gr.Request

        def doc_outputs():
            choices = self.document_sources()
            return self.documents_view(), gr.Dropdown(choices=choices, value=None)

        def on_upload(files, progress=gr.Progress()):  # noqa: B008
            report = self.upload(files, progress)
            return (report, *doc_outputs(), None)

        def on_delete(source):
            return (self.delete(source), *doc_outputs())

        def on_rebuild(progress=gr.Progress()):  # noqa: B008
            return (self.rebuild(progress), *doc_outputs())

        with gr.Blocks(title="qa: ask your documents", analytics_enabled=False) as app:
            turns = gr.State([])
            gr.Markdown(
                "### qa: ask your documents\nAnswers come only from the indexed documents, "
                "with citations you can check. Everything runs on this machine."
            )
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=360):
                        chat = gr.HTML(
                            transcript_html([]),
                            elem_id="qa-chat",
                            js_on_load=CHAT_JS,
                            autoscroll=True,
                            max_height=620,
                            padding=True,
                        )
                        question = gr.Textbox(
                            show_label=False,
                            placeholder="Ask a question about your documents, then press Enter",
                            elem_id="qa-question",
                            lines=1,
                            max_lines=6,
                            autofocus=True,
                        )
                        with gr.Row():
                            ask_btn = gr.Button("Ask", variant="primary", elem_id="qa-ask")
                            stop_btn = gr.Button("Stop", elem_id="qa-stop")
                            clear_btn = gr.Button("Clear chat", elem_id="qa-clear")
                    with gr.Column(scale=2, min_width=300):
                        sources = gr.HTML(
                            sources_html([]),
                            elem_id="qa-sources",
                            js_on_load=None,
                            max_height=720,
                            padding=True,
                        )
                with gr.Accordion("Settings", open=False, elem_id="qa-settings"), gr.Row():
                    k = gr.Slider(1, MAX_K, value=self.settings.k, step=1, label="Passages (top-k)")
                    mode = gr.Radio(
                        list(MODES),
                        value=self.default_mode,
                        label="Answer mode",
                        info="Model: the local language model writes the answer. "
                        "Extractive: quote the best sentence, no model.",
                        elem_id="qa-mode",
                    )
                    model_name = gr.Dropdown(
                        models,
                        value=default_model if models else None,
                        label="Model file (models/)",
                        elem_id="qa-model",
                    )
                    temperature = gr.Slider(
                        0.0,
                        MAX_TEMPERATURE,
                        value=self.settings.temperature,
                        step=0.05,
                        label="Temperature",
                    )
            with gr.Tab("Documents", id="documents"):
                upload = gr.File(
                    label="Add documents: txt, md, html, pdf, docx "
                    f"(up to {self.max_upload_bytes / 1e6:.0f} MB each)",
                    file_count="multiple",
                    type="filepath",
                    elem_id="qa-upload",
                )
                report = gr.HTML("", elem_id="qa-report")
                docs = gr.HTML("", elem_id="qa-docs")
                with gr.Row():
                    doc_choice = gr.Dropdown(
                        self.document_sources(),
                        value=None,
                        label="Document",
                        elem_id="qa-doc-choice",
                        scale=3,
                    )
                    delete_btn = gr.Button("Delete document", variant="stop", elem_id="qa-delete")
                    rebuild_btn = gr.Button("Rebuild index", elem_id="qa-rebuild")

            ask_inputs = [question, turns, k, mode, model_name, temperature]
            ask_outputs = [question, turns, chat, sources]
            gr.on(
                [question.submit, ask_btn.click],
                on_ask,
                ask_inputs,
                ask_outputs,
                api_name="ask",
                concurrency_limit=CHAT_CONCURRENCY,
                concurrency_id="chat",
                show_progress="hidden",
            )
            stop_btn.click(on_stop, None, None, queue=False, api_name="stop")
            clear_btn.click(on_clear, None, ask_outputs, queue=False, api_name="clear")
            upload.upload(
                on_upload,
                [upload],
                [report, docs, doc_choice, upload],
                api_name="upload",
                concurrency_id="documents",
                concurrency_limit=1,
            )
            delete_btn.click(
                on_delete,
                [doc_choice],
                [report, docs, doc_choice],
                api_name="delete",
                concurrency_id="documents",
                concurrency_limit=1,
            )
            rebuild_btn.click(
                on_rebuild,
                None,
                [report, docs, doc_choice],
                api_name="rebuild",
                concurrency_id="documents",
                concurrency_limit=1,
            )
            app.load(doc_outputs, None, [docs, doc_choice], queue=False, api_name=False)
        app.queue(default_concurrency_limit=1)
        app.qa = self  # the handlers' owner, for tests and `serve`
        return app


def _note(answer: Answer) -> str:
    mode = "model" if answer.mode == "llm" else answer.mode
    total = answer.timings.get("total")
    return f"{mode}, {total:.1f} s" if total else mode


def _chunks(chunks: dict[str, int], source: str) -> str:
    n = chunks.get(source)
    return f"{n} passage{'s' if n != 1 else ''}" if n is not None else ""


def launch_options() -> dict[str, Any]:
    """`launch()` arguments every run of the app uses: local fonts, our CSS, no telemetry."""
    import gradio as gr

    theme = gr.themes.Default(
        font=("ui-sans-serif", "system-ui", "sans-serif"),
        font_mono=("ui-monospace", "Consolas", "monospace"),
    )
    return {"theme": theme, "css": CSS, "ssr_mode": False, "enable_monitoring": False}


def build_app(settings: Settings | None = None, **options):
    """The Gradio Blocks for `settings` (index and model); `options` go to `ChatApp`."""
    return ChatApp(settings, **options).build()


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    index_dir: str | Path | None = None,
    model: str | Path | None = None,
    auth: str | None = None,
    insecure: bool = False,
    open_browser: bool = False,
    *,
    settings: Settings | None = None,
    block: bool = True,
    warm: bool = True,
    quiet: bool = False,
    **options,
):
    """Run the app until interrupted (or, with `block=False`, return the launched Blocks).

    Raises `BadInput` for a non-loopback `host` without `auth` (or `QA_AUTH`) unless
    `insecure`, and for a port that is in use."""
    credentials = check_exposure(host, auth, insecure)
    settings = (settings or Settings.load()).with_(index_dir=index_dir, model=model)
    if model is not None and not Path(model).is_file():
        from qa.errors import ModelNotFound

        raise ModelNotFound(f"model file {model} not found: pass --model PATH to a GGUF file")
    app = build_app(settings, **options)
    if warm:
        threading.Thread(target=_warm_up, args=(app.qa,), daemon=True).start()
    try:
        app.launch(
            server_name=host,
            server_port=int(port),
            auth=credentials,
            inbrowser=open_browser,
            share=False,
            prevent_thread_lock=True,
            show_error=False,
            quiet=True,  # our own one line below, not Gradio's hint about share links
            max_file_size=app.qa.max_upload_bytes,
            **launch_options(),
        )
    except OSError as exc:
        raise BadInput(f"cannot serve on {host}:{port} ({exc}): pass another --port") from None
    if not quiet:
        shown = f"[{host}]" if ":" in host else host
        print(f"qa: the chat is at http://{shown}:{port}/ (Ctrl-C stops it)", flush=True)
    if not block:
        return app
    try:
        while True:
            time.sleep(0.5)  # interruptible by Ctrl-C, unlike a bare Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return None


def _warm_up(qa_app: ChatApp) -> None:
    """Load the embedder and the default model in the background, so the first question
    does not wait for them."""
    try:
        qa_app.index.embedder.embed(["warm up"])
        model = qa_app.settings.model
        if model.is_file():
            from qa.models.generator import load_generator

            load_generator(model, qa_app.settings.n_ctx, qa_app.settings.threads)
    except Exception:  # the first request will report the problem properly
        log.debug("warm-up failed", exc_info=True)
