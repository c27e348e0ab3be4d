"""The chat's behaviour: the handlers of the page's events, over one `Engine`.

The handlers are plain methods returning plain values (HTML strings, lists of `ChatTurn`), so
they are tested without a browser. They hold no retrieval or answer logic and no lock: the
engine's index follows its own rebuilds (readers keep answering from the old database until
the new one is switched in), and closing an answer's stream stops its generation at once.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from qa.config import Settings
from qa.engine import Engine
from qa.errors import BadInput, QAError
from qa.records import Answer
from qa.web.files import formats_view, inside, stage_uploads
from qa.web.layout import MODES
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


def _no_progress(*args, **kwargs) -> None:
    pass


class ChatApp:
    """The state shared by every browser session, and the handlers of the UI's events."""

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        settings: Settings | None = None,
        upload_dir: str | Path | None = None,
        max_upload_mb: float | None = None,
    ) -> None:
        self.engine = engine or Engine(settings, create=True)
        self.settings = self.engine.settings
        self.upload_dir = Path(upload_dir or self.engine.index_dir.resolve().parent / "uploads")
        mb = self.settings.max_upload_mb if max_upload_mb is None else max_upload_mb
        self.max_upload_bytes = int(Settings(max_upload_mb=mb).max_upload_mb * 1_000_000)
        self._stops: dict[str, threading.Event] = {}
        self._stops_lock = threading.Lock()
        self._turn_ids = itertools.count(1)

    # --- models ---------------------------------------------------------------------

    def models(self) -> dict[str, Path]:
        """The GGUF files the settings may choose from, by file name."""
        return self.engine.models()

    @property
    def default_mode(self) -> str:
        """The mode the settings choose (QA_MODE), as the radio button names it."""
        return next(name for name, value in MODES.items() if value == self.settings.mode)

    def default_model_name(self) -> str:
        return self.settings.model.name

    def _model(self, name: str | None) -> Path | None:
        """The model file a page's choice names: only files on offer (a name from the page is
        never taken as a path)."""
        if not name:
            return None
        offered = self.models()
        if name not in offered:
            raise BadInput(f"unknown model {name!r}: choose one of the files in models/")
        return offered[name]

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
        turns.append(ChatTurn(next(self._turn_ids), question))
        yield "", list(turns), transcript_html(turns), sources_html(turns)
        pieces: list[str] = []
        final = None
        stream = None
        try:
            mode_value = MODES.get(mode, mode) if mode else self.settings.mode
            history = [t.answer for t in turns[:-1] if t.answer is not None]
            stream = self.engine.ask_stream(
                question,
                history,
                k=None if k is None else int(k),
                mode=mode_value,
                model=self._model(model_name) if mode_value == "llm" else None,
                temperature=temperature,
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
                    sources=source_views(final, self.engine.document_text),
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
            if stream is not None:
                stream.close()  # a stopped or abandoned answer releases the model now
        yield "", list(turns), transcript_html(turns), sources_html(turns)

    def clear(self, session: str = "") -> tuple[str, list[ChatTurn], str, str]:
        self.stop(session)
        return "", [], transcript_html([]), sources_html([])

    # --- documents ------------------------------------------------------------------

    def document_sources(self) -> list[str]:
        return [d.source for d in self.engine.documents()]

    def documents_view(self) -> str:
        return documents_html(self.engine.documents())

    def formats_view(self) -> str:
        """The formats the upload accepts, as the page lists them (HTML)."""
        return formats_view(self.settings.ocr)

    def upload(self, files: Sequence[str | Path] | None, progress=_no_progress) -> str:
        """Index uploaded files; return the per-file report (HTML)."""
        files = [f for f in (files or []) if f]
        if not files:
            return report_html([], "No files chosen.")
        staged = stage_uploads(files, self.upload_dir, self.max_upload_bytes)
        results: list[FileResult] = list(staged.refused)
        if not staged.paths:
            return report_html(results, "Nothing was indexed.")
        progress(0.0, desc="Reading files")
        engine = self.engine
        try:
            report = engine.index_files(
                staged.paths, add_only=True, progress=_file_progress(progress)
            )
            names = {engine.source_for(p): staged.names[str(p)] for p in staged.paths}
            chunks = {d.source: d.chunks for d in engine.documents()}
        except QAError as exc:
            return report_html(results, f"Indexing failed: {exc}")
        notes = {w.source: w.message for w in report.warnings}
        for status, sources in (
            ("indexed", report.added),
            ("updated", report.updated),
            ("unchanged", report.unchanged),
        ):
            for source in sources:
                detail = "already indexed" if status == "unchanged" else _chunks(chunks, source)
                if source in notes:
                    detail = f"{detail}; {notes[source]}"
                results.append(FileResult(names.get(source, source), status, detail))
        for skip in report.skipped:
            results.append(
                FileResult(
                    names.get(skip.source, skip.source),
                    "failed" if skip.failed else "skipped",
                    skip.reason,
                )
            )
            if skip.source not in chunks:  # not indexed: do not keep the file
                engine.path_for(skip.source).unlink(missing_ok=True)
        kept = len(report.added) + len(report.updated) + len(report.unchanged)
        summary = (
            f"{len(report.added)} indexed, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(results) - kept} not indexed; "
            f"{report.chunks_embedded} passages embedded in {report.seconds:.1f} s"
        )
        return report_html(results, summary)

    def delete(self, source: str | None) -> str:
        """Remove a document from the index (and its file, if it was uploaded here)."""
        if not source:
            return report_html([], "Choose a document to delete.")
        try:
            removed = self.engine.remove(source)
            for s in removed:
                path = self.engine.path_for(s)
                if inside(path, self.upload_dir):
                    path.unlink(missing_ok=True)
        except QAError as exc:
            return report_html([], f"Could not delete {source}: {exc}")
        return report_html([FileResult(s, "removed") for s in removed], "Removed from the index.")

    def rebuild(self, progress=_no_progress) -> str:
        """Index again every file and folder the index was built from (and the uploads).
        Questions go on meanwhile, answered from the old index until the new one is ready."""
        progress(0.0, desc="Rebuilding the index")
        try:
            roots = [r for r in self.engine.roots() if r.exists()]
            uploads = self.upload_dir
            if (
                uploads.is_dir()
                and any(uploads.iterdir())
                and not any(inside(uploads, r) for r in roots if r.is_dir())
            ):
                roots.append(uploads)
            if not roots:
                return report_html([], "The index is empty: there was nothing to index again.")
            report = self.engine.index_files(roots, rebuild=True, progress=_file_progress(progress))
        except QAError as exc:
            return report_html([], f"Rebuild failed (the index is as it was): {exc}")
        return report_html(
            [
                FileResult(s.source, "failed" if s.failed else "skipped", s.reason)
                for s in report.skipped
            ],
            f"Rebuilt: {len(report.added)} documents, {report.chunks_embedded} passages "
            f"in {report.seconds:.1f} s",
        )

    def build(self):
        """The Gradio Blocks of the app (not launched)."""
        from qa.web.layout import build

        return build(self)


def _file_progress(progress):
    """The index's progress events as Gradio progress: the files bar, with the pages read
    by OCR so far (scans and images are slow) and passages being embedded."""
    state = {"files": None, "ocr": 0}

    def files_desc() -> str:
        n, total = state["files"] or (0, 0)
        ocr = state["ocr"]
        pages = f", OCR: {ocr} page{'s' if ocr != 1 else ''} read" if ocr else ""
        return f"Indexing files ({n}/{total}){pages}"

    def on_progress(event: str, n: int, total: int | None) -> None:
        if event == "files" and total:
            state["files"] = (n, total)
            progress((n, total), desc=files_desc(), unit="files")
        elif event == "ocr":
            state["ocr"] = n
            progress(state["files"], desc=files_desc(), unit="files")
        elif event == "embed" and total:
            progress(None, desc=f"Embedding {total} passages")

    return on_progress


def _note(answer: Answer) -> str:
    mode = "model" if answer.mode == "llm" else answer.mode
    total = answer.timings.get("total")
    return f"{mode}, {total:.1f} s" if total else mode


def _chunks(chunks: dict[str, int], source: str) -> str:
    n = chunks.get(source)
    return f"{n} passage{'s' if n != 1 else ''}" if n is not None else ""
