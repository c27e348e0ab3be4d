"""The engine: one object that owns an index, the models it answers with, and their lifecycle.
Every face (the CLI, the Python API, the browser chat) calls only its public methods.

    import qa
    with qa.Engine(qa.Settings.load(index_dir="index")) as engine:
        engine.index_files(["corpus"])
        answer = engine.ask("Did Ford deny the Xiaomi report?")
        print(answer.text)
        for c in answer.citations:      # engine.document_text(c.source)[c.start:c.end] == c.quote
            print(c.n, c.source, c.start, c.end, c.quote)

What it owns: the `Index` (opened on first use; it follows rebuilds made in this process or
another by itself), and a `ModelPool` of loaded embedders and generators (by default the
process-wide pool, so several engines never load a model twice). Request checks (mode, k,
temperature, model) and the answer-mode rule exist here once.

`qa.ask(question, index="index")` is shorthand for the shared engine of that index folder
(`Engine.shared`), kept open for the life of the process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from qa.config import PROJECT_ROOT, Settings
from qa.errors import BadInput
from qa.records import Answer, DocumentInfo, Hit, IndexReport
from qa.request import MODES, Request, check_k, check_temperature, resolve_mode

__all__ = ["MODES", "Engine", "Request", "ask", "ask_stream", "resolve_mode"]

log = logging.getLogger(__name__)


class Engine:
    """An index and the models that answer from it (see the module docstring)."""

    _shared: dict[tuple[str, str], Engine] = {}
    _shared_lock = threading.Lock()

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        index=None,
        generator=None,
        reader=None,
        pool=None,
        create: bool = False,
    ) -> None:
        """`index`: an open `Index` (used, not owned) or a folder (default
        `settings.index_dir`); `generator`: a `Generator` object for every llm answer (tests,
        or a model loaded elsewhere) instead of the GGUF files; `create`: make an empty index
        if there is none."""
        from qa.index.core import Index
        from qa.models.pool import ModelPool

        self.settings = settings or (index.settings if isinstance(index, Index) else None)
        self.settings = self.settings or Settings.load()
        self._index = index if isinstance(index, Index) else None
        self._owns_index = self._index is None
        self.index_dir = (
            self._index.directory
            if self._index is not None
            else Path(index or self.settings.index_dir)
        )
        self._generator = generator
        self._reader = reader
        self.pool = pool or ModelPool.default()
        self._create = create
        self._lock = threading.Lock()

    @classmethod
    def shared(
        cls, index_dir: str | Path | None = None, settings: Settings | None = None
    ) -> Engine:
        """The process's engine for an index folder, made on first use and kept open."""
        settings = settings or Settings.load()
        directory = Path(index_dir) if index_dir is not None else settings.index_dir
        key = (str(directory.expanduser().resolve()), settings.embed_model)
        with cls._shared_lock:
            engine = cls._shared.get(key)
            if engine is None:
                engine = cls._shared[key] = cls(settings, index=directory)
            return engine

    @classmethod
    def close_shared(cls) -> None:
        """Close every shared engine (after deleting their folders, say)."""
        with cls._shared_lock:
            for engine in cls._shared.values():
                engine.close()
            cls._shared.clear()

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def index(self):
        """The `Index` (opened on first use)."""
        from qa.index.core import Index

        with self._lock:
            if self._index is None:
                self._index = Index.open(
                    self.index_dir,
                    settings=self.settings,
                    embedder=None,
                    create=self._create,
                )
            return self._index

    def close(self) -> None:
        """Close the index if this engine opened it (the models stay in their pool)."""
        with self._lock:
            if self._index is not None and self._owns_index:
                self._index.close()
                self._index = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- documents -----------------------------------------------------------------------

    def index_files(
        self,
        paths: Iterable[str | Path] | None = None,
        *,
        rebuild: bool = False,
        add_only: bool = False,
        progress: Callable | None = None,
        ray=None,
    ) -> IndexReport:
        """Index `paths` (default: what the index was built from). Only new or changed files
        are read and embedded; files gone from under `paths` are dropped unless `add_only`.
        With `rebuild`, build everything again and switch to it atomically (the old index
        serves readers until then, and stays if the rebuild fails). `progress(event, n,
        total)` is told of files read ("files"), passages embedded ("embed") and pages read
        by OCR ("ocr", n so far, None), in the calling thread. `ray`: read, parse and embed
        on Ray (`qa.scale.ray_ingest`): a `RayOptions`, or True for the settings' cluster."""
        if not self.settings.ocr:  # Settings(ocr=False) / QA_OCR=0: no OCR in this run
            from qa.ingest import ocr

            with ocr.configured(enabled=False):
                return self._index_files(paths, rebuild, add_only, progress, ray)
        return self._index_files(paths, rebuild, add_only, progress, ray)

    def _index_files(self, paths, rebuild: bool, add_only: bool, progress, ray=None):
        from qa.index.rebuild import rebuild as rebuild_index

        paths = [Path(p) for p in paths] if paths else []
        for path in paths:
            if not path.exists():
                raise BadInput(f"no such file or folder: {path}")
        if ray:
            from qa.scale.ray_ingest import require_ray

            require_ray()  # before an index folder is made for it
        if rebuild:
            from qa.models.embedder import embedder_for_build

            embedder = embedder_for_build(
                self.settings, self._index.embedder if self._index is not None else None
            )
            update = None
            if ray:
                from qa.scale.ray_ingest import ray_index

                def update(new, roots, progress):  # the Ray pipeline into the staging index
                    return ray_index(new, roots, ray, remove_missing=True, progress=progress)

            report = rebuild_index(
                self.index_dir,
                paths,
                settings=self.settings,
                embedder=embedder,
                progress=progress,
                update=update,
            )
            if self._index is not None:
                self._index.refresh()
            return report
        index = self._writable_index()
        if not paths:
            paths = index.roots()
            if not paths:
                raise BadInput(
                    f"{self.index_dir}/ is empty: give the files to index, `qa index PATH`"
                )
            missing = [p for p in paths if not p.exists()]
            if missing:
                raise BadInput(
                    f"{missing[0]} does not exist: give the files to index, `qa index PATH`"
                )
        if ray:
            from qa.scale.ray_ingest import ray_index

            return ray_index(index, paths, ray, remove_missing=not add_only, progress=progress)
        update = index.add if add_only else index.sync
        return update(paths, progress=progress)

    def _writable_index(self):
        if self._index is None and not self._create:
            from qa.index.core import Index

            with self._lock:
                if self._index is None:
                    self._index = Index.open(self.index_dir, settings=self.settings, create=True)
        return self.index

    def roots(self) -> list[Path]:
        return self.index.roots()

    def remove(self, source: str | Path) -> list[str]:
        return self.index.remove(source)

    def documents(self) -> list[DocumentInfo]:
        return self.index.documents()

    def document_text(self, source: str) -> str:
        return self.index.document_text(source)

    def source_for(self, path: str | Path) -> str:
        return self.index.source_for(Path(path))

    def path_for(self, source: str) -> Path:
        return self.index.path_for(source)

    def chunk_count(self) -> int:
        return len(self.index)

    def status(self):
        """`IndexStatus`: documents, chunks and FAISS vectors (they must agree)."""
        return self.index.status()

    # --- search and answers -----------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int | None = None,
        *,
        sources: Sequence[str] | None = None,
        mode: str = "hybrid",
    ) -> list[Hit]:
        k = self._check_k(k)
        return self.index.search(query, k, sources=sources, mode=mode)

    def models(self) -> dict[str, Path]:
        """The GGUF files on offer, by file name: the configured one and its folder's, then
        the project's `models/`."""
        found: dict[str, Path] = {}
        configured = self.settings.model
        if configured.is_file():
            found[configured.name] = configured
        for folder in dict.fromkeys([configured.parent, PROJECT_ROOT / "models"]):
            if folder.is_dir():
                for path in sorted(folder.glob("*.gguf")):
                    found.setdefault(path.name, path.resolve())
        return found

    def request(
        self,
        *,
        k: int | None = None,
        mode: str | None = None,
        model: str | Path | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Request:
        """Check one request's options against the settings: the mode (an explicit model
        means llm unless a mode is given), k, temperature, max tokens, and the model, given
        as a path or as the name of a file `models()` offers."""
        mode = resolve_mode(mode, model, self.settings)
        k = self._check_k(k)
        check_temperature(temperature)
        changes: dict = {"k": k, "temperature": temperature, "max_answer_tokens": max_tokens}
        path = None
        if mode == "llm" and self._generator is None:
            path = self._model_path(model)
            changes["model"] = path
        settings = self.settings.with_(**changes)
        return Request(settings, mode, path)

    def _check_k(self, k) -> int:
        return self.settings.k if k is None else check_k(k)

    def _model_path(self, model) -> Path:
        if model is None:
            return self.settings.model
        path = Path(model)
        if path.exists() or path.parent != Path("."):
            return path
        offered = self.models()
        if str(model) not in offered:
            names = ", ".join(offered) or "none"
            raise BadInput(f"unknown model {model!r}: use a GGUF file path or one of: {names}")
        return offered[str(model)]

    def reader(self):
        """The trained reader (None with `QA_READER=off`: the similarity heuristics)."""
        if self._reader is not None:
            return self._reader
        name = str(self.settings.reader)
        if name == "off":
            return None
        if name == "default":
            from qa.models.reader import default_reader_path

            if not (default_reader_path() / "manifest.json").is_file():
                _warn_once("no trained reader in models/reader/: answers use the heuristics")
                return None
            return self.pool.reader(None, self.settings.reader_backend)
        return self.pool.reader(name, self.settings.reader_backend)

    def generator(self, model: str | Path | None = None):
        """The generator for `model` (default: the configured GGUF), loaded once per pool."""
        if self._generator is not None:
            return self._generator
        s = self.settings
        return self.pool.generator(self._model_path(model), s.n_ctx, s.threads)

    def ask_stream(
        self,
        question: str,
        history: Sequence | None = None,
        *,
        k: int | None = None,
        mode: str | None = None,
        model=None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        options=None,
    ) -> Iterator[str | Answer]:
        """Yield the answer's text as it is generated (`str` pieces), then the final `Answer`
        (see `qa.answer.pipeline`). Closing the iterator stops generation at once."""
        from qa.answer.pipeline import DEFAULT_OPTIONS, answer_stream

        if model is not None and not isinstance(model, (str, Path)):
            engine = Engine(
                self.settings,
                index=self.index,
                generator=model,
                reader=self._reader,
                pool=self.pool,
            )
            return engine.ask_stream(
                question,
                history,
                k=k,
                mode=mode or "llm",
                temperature=temperature,
                max_tokens=max_tokens,
                options=options,
            )
        req = self.request(
            k=k, mode=mode, model=model, temperature=temperature, max_tokens=max_tokens
        )
        generator = self.generator(req.model) if req.mode == "llm" else None
        return answer_stream(
            question,
            self.index,
            generator,
            req.settings,
            req.mode,
            history,
            options or DEFAULT_OPTIONS,
            self.reader(),
        )

    def ask(self, question: str, history: Sequence | None = None, **kwargs) -> Answer:
        """Answer `question` from the documents (the keywords are those of `ask_stream`)."""
        answer = None
        stream = self.ask_stream(question, history, **kwargs)
        try:
            for item in stream:
                if isinstance(item, Answer):
                    answer = item
        finally:
            stream.close()
        assert answer is not None
        return answer

    def warm_up(self, mode: str | None = None) -> None:
        """Load what answering needs (the embedder, and the model in llm mode) so the first
        question is not slow: one search, and one token from the model."""
        if self.chunk_count():
            self.index.search("warm up", 1)
        else:
            self.index.embedder.embed(["warm up"])
        reader = self.reader()
        if reader is not None:
            reader.read("warm up?", [("Warm up.", [(0, 8)])])
        if resolve_mode(mode, None, self.settings) == "llm":
            gen = self.generator()
            for _ in gen.stream("Hello", max_tokens=1):
                pass


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def ask_stream(
    question: str,
    index=None,
    history=None,
    k=None,
    model=None,
    mode=None,
    settings=None,
    options=None,
) -> Iterator[str | Answer]:
    """`Engine.ask_stream` on `index` (an `Index`, or a folder: its shared engine)."""
    return _engine_for(index, settings).ask_stream(
        question, history, k=k, mode=mode, model=model, options=options
    )


def ask(
    question: str,
    index=None,
    history=None,
    k=None,
    model=None,
    mode=None,
    settings=None,
    options=None,
) -> Answer:
    """`Engine.ask` on `index` (an `Index`, or a folder: its shared engine)."""
    return _engine_for(index, settings).ask(
        question, history, k=k, mode=mode, model=model, options=options
    )


def _engine_for(index, settings: Settings | None) -> Engine:
    from qa.index.core import Index

    if isinstance(index, Index):
        return Engine(settings or index.settings, index=index)
    return Engine.shared(index, settings)
