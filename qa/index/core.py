"""The Index: documents in, passages out (see `qa.index.manifest` for the files on disk).

Every write is a SQLite transaction. The FAISS file is written after them; a reader that
finds the database at a newer generation than its FAISS object catches up from the stored
vectors (only the changed ids), and one that finds no FAISS file for the current
generation rebuilds it from the stored vectors (no re-embedding, logged), so SQLite ids and
FAISS ids always agree. A damaged database or manifest raises `IndexCorrupt` naming the
rebuild command.

Every read first checks (one `stat`) whether the manifest was replaced, which is how a
rebuild, in this process or another, switches readers to the new database.

Threads: one `Index` may serve any number of threads. Reads take a short in-process lock;
a write holds the lock file for its whole run (one writing process) but the in-process
lock only while it commits, so searches go on while files are read and embedded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.errors import BadInput, IndexCorrupt, IndexMismatch
from qa.index import manifest as mf
from qa.index.fusion import FUSIONS, fuse
from qa.index.lock import FileLock
from qa.index.store import Store
from qa.index.vectors import VectorIndex
from qa.index.vectors_state import Vectors
from qa.index.writer import Writer
from qa.models.embedder import Embedder, SentenceTransformerEmbedder, get_embedder
from qa.records import DocumentInfo, Hit, IndexStatus

__all__ = ["Index", "clear", "FileLock"]

log = logging.getLogger(__name__)
clear = mf.clear
SEARCH_MODES = ("hybrid", "dense", "bm25")
# Each retriever returns this many candidates before fusion (at least 4 k). Measured on
# SQuAD dev: recall@5 stops rising past 80 (`qa eval squad --mode none --depth N`).
MIN_DEPTH = 80


class Index(Vectors, Writer):
    """A searchable index of documents. Open with `Index.open` or make with `Index.build`."""

    def __init__(
        self,
        directory: Path,
        settings: Settings,
        embedder: Embedder,
        *,
        base: Path | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.settings = settings
        self.embedder = embedder
        # sources are named relative to this folder (the index folder's parent)
        self.base = Path(base) if base is not None else self.directory.resolve().parent
        self._lock = threading.RLock()  # the SQLite connection and the FAISS object
        self._writing = threading.Lock()  # one writing thread; others wait for it
        self._vectors: VectorIndex | None = None
        self._generation = -1
        self._dimension_ok = False
        self.store: Store | None = None
        self.manifest: dict = {}
        self._stamp: mf.Stamp | None = None
        self._closed = False
        self._load_manifest()

    # --- opening ------------------------------------------------------------

    @classmethod
    def open(
        cls,
        index_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        create: bool = False,
    ) -> Index:
        """Open the index in `index_dir` (default: settings.index_dir, i.e. `index/`);
        with `create`, make an empty one if there is none."""
        settings = settings or Settings.load()
        directory = Path(index_dir) if index_dir is not None else settings.index_dir
        if directory.exists() and not directory.is_dir():
            raise BadInput(f"{directory} is a file, not an index folder")
        if not (directory / mf.MANIFEST).is_file():
            if not create and mf.database_of(directory) is not None:
                raise IndexCorrupt(
                    f"{directory}/ has an index database but no manifest; "
                    f"{mf.rebuild_hint(directory)}"
                )
            if not create:
                mf.read_manifest(directory)  # raises IndexNotFound
            embedder = embedder or get_embedder(settings.embed_model, settings.build_backend())
            mf.create(directory, mf.make_manifest(settings, embedder))
        if embedder is None:
            embedder = get_embedder(
                mf.embedder_name(directory, settings), mf.embedder_backend(directory, settings)
            )
        return cls(directory, settings, embedder)

    @classmethod
    def build(
        cls,
        paths,
        index_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        rebuild: bool = True,
        progress=None,
    ) -> Index:
        """Index `paths` into `index_dir`; with `rebuild`, build it anew from `paths` alone
        (an existing index is replaced atomically, see `qa.index.rebuild`)."""
        from qa.index.rebuild import rebuild as rebuild_index

        settings = settings or Settings.load()
        directory = Path(index_dir) if index_dir is not None else settings.index_dir
        paths = list(paths)
        if rebuild and (directory / mf.MANIFEST).exists():
            embedder = embedder or get_embedder(
                settings.embed_model, mf.embedder_backend(directory, settings)
            )
            rebuild_index(directory, paths, settings=settings, embedder=embedder, progress=progress)
            return cls.open(directory, settings=settings, embedder=embedder)
        if rebuild:
            clear(directory)  # no index, or only the remains of one
        index = cls.open(directory, settings=settings, embedder=embedder, create=True)
        index.sync(paths, progress=progress)
        return index

    def _load_manifest(self) -> None:
        """(Re)read the manifest; open its database if it names another one."""
        stamp = mf.Stamp.of(self.directory / mf.MANIFEST)
        manifest = mf.read_manifest(self.directory)
        emb = manifest.get("embedder", {})
        if emb.get("name") != self.embedder.name:
            raise IndexMismatch(
                f"{self.directory}/ was built with embedder {emb.get('name')!r}, not "
                f"{self.embedder.name!r}; {mf.rebuild_hint(self.directory)}"
            )
        mf.check_backend(self.directory, manifest, self.embedder)
        database = self.directory / manifest["database"]
        if not database.is_file():
            raise IndexCorrupt(
                f"{self.directory}/ has a manifest but its database {database.name} is missing; "
                f"{mf.rebuild_hint(self.directory)}"
            )
        if self.store is None or self.store.path != database:
            old, self.store = self.store, Store(database, bm25=self.settings.bm25)
            if old is not None:
                old.close()
                log.info("%s/ was rebuilt: reading its new database", self.directory)
            self._vectors, self._generation = None, -1
        self.manifest, self._stamp = manifest, stamp
        self._factory_notice(manifest.get("faiss_factory", "Flat"))
        if not isinstance(self.embedder, SentenceTransformerEmbedder):
            self._check_dimension()  # cheap for other embedders; else on first use

    def refresh(self) -> bool:
        """Switch to a new database if the manifest was replaced (a rebuild); True if so."""
        if self._closed:
            raise BadInput(f"the index {self.directory}/ is closed")
        if mf.Stamp.of(self.directory / mf.MANIFEST) == self._stamp:
            return False
        with self._lock:
            if mf.Stamp.of(self.directory / mf.MANIFEST) == self._stamp:
                return False
            self._load_manifest()
            return True

    def _check_dimension(self) -> None:
        """The embedder makes vectors of the size stored (loads the model: done lazily)."""
        if self._dimension_ok:
            return
        stored = self.manifest.get("embedder", {}).get("dimension")
        if stored != self.embedder.dimension:
            raise IndexMismatch(
                f"{self.directory}/ holds {stored}-d vectors but the embedder makes "
                f"{self.embedder.dimension}-d ones; {mf.rebuild_hint(self.directory)}"
            )
        self._dimension_ok = True

    def close(self) -> None:
        with self._lock:
            if self.store is not None and not self._closed:
                self.store.close()
            self._closed = True

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write_lock(self) -> FileLock:
        return FileLock(self.directory / ".lock")

    # --- sources ------------------------------------------------------------------

    def source_for(self, path: Path) -> str:
        """How a file is named in the index: relative to the index's parent folder if inside it."""
        path = Path(path)
        try:
            resolved = path.resolve()
            if path.is_symlink() and not resolved.exists():
                raise OSError("a broken symlink")
        except (RuntimeError, OSError):  # a broken link or a loop: name the link itself
            resolved = path.parent.resolve() / path.name
        try:
            return resolved.relative_to(self.base).as_posix()
        except ValueError:
            return str(resolved)

    def path_for(self, source: str) -> Path:
        path = Path(source)
        return path if path.is_absolute() else self.base / path

    def roots(self) -> list[Path]:
        """The folders and files this index was built from, for `qa index` with no PATH."""
        self.refresh()
        with self._lock:
            return [self.path_for(s) for s in self.store.get_meta("roots", [])]

    # --- reading ----------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        self.refresh()
        with self._lock:
            return self.store.documents()

    def document_text(self, source: str) -> str:
        self.refresh()
        with self._lock:
            text = self.store.document_text(source)
        if text is None:
            raise BadInput(f"{source} is not in the index (see `qa list`)")
        return text

    def status(self) -> IndexStatus:
        """Counts that say whether the index is whole: documents, chunks, FAISS vectors."""
        self.refresh()
        with self._lock:
            return IndexStatus(
                documents=len(self.store.documents()),
                chunks=self.store.count_chunks(),
                vectors=self._current_vectors().ntotal,
                embedder=self.manifest["embedder"]["name"],
                database=self.store.path.name,
            )

    def __len__(self) -> int:
        self.refresh()
        with self._lock:
            return self.store.count_chunks()

    def search(
        self,
        query: str,
        k: int | None = None,
        *,
        sources: Sequence[str] | None = None,
        mode: str = "hybrid",
        fusion: str | None = None,
    ) -> list[Hit]:
        """The `k` best passages for `query`: dense and BM25 results fused (`mode="hybrid"`),
        or one retriever alone (`mode="dense"` / `"bm25"`); `sources` limits the documents."""
        if not query or not query.strip():
            raise BadInput("the query is empty")
        if mode not in SEARCH_MODES:
            raise BadInput(f"unknown search mode {mode!r}: use hybrid, dense or bm25")
        fusion = fusion or self.settings.fusion
        if fusion not in FUSIONS:
            raise BadInput(f"unknown fusion {fusion!r}: use weighted or rrf")
        k = k or self.settings.k
        depth = max(MIN_DEPTH, 4 * k)
        self.refresh()
        q = None
        if mode in ("hybrid", "dense"):  # embedding is the slow part: outside the lock
            self._check_dimension()
            q = self.embedder.embed([query])[0]
        with self._lock:
            lists: dict[str, list[tuple[int, float]]] = {}
            if q is not None:
                vectors = self._current_vectors()
                allowed = None
                if sources:
                    allowed = np.asarray(self.store.chunk_ids_for_sources(sources), np.int64)
                lists["dense"] = vectors.search(q, depth, allowed)
            if mode in ("hybrid", "bm25"):
                lists["bm25"] = self.store.bm25(query, depth, sources)
            ranked = fuse(lists, fusion)[:k]
            rows = self.store.chunks([cid for cid, _, _ in ranked])
        hits = []
        for cid, score, found_by in ranked:
            row = rows.get(cid)
            if row is None:  # removed by a commit since the FAISS object was caught up
                continue
            hits.append(
                Hit(
                    chunk_id=cid,
                    source=row.source,
                    text=row.text,
                    start=row.start,
                    end=row.end,
                    score=score,
                    page=row.page,
                    headings=row.headings,
                    retrievers=found_by,
                    locator=row.locator,
                )
            )
        return hits
