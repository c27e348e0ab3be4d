"""Writing to an index: adding, updating and removing documents (`Index` inherits this).

A file whose size and modification time equal what was stored is unchanged and is not
read; otherwise it is read and hashed, and only a changed hash re-indexes it. Files are
read, loaded and chunked outside the in-process lock; each group of EMBED_GROUP chunks is
embedded (searches go on meanwhile) and committed in one transaction. PDF, HTML and DOCX
files are read and parsed in worker processes (`settings.threads` of them, see
`qa.ingest.parallel`) while earlier files are embedded; outcomes are taken in file order,
so the index is the same with any number of workers.

Limits: a file larger than `settings.max_file_mb`, or whose text makes more than
`settings.max_chunks_per_file` passages, is skipped with a message (never cut short).
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import BadInput
from qa.ingest.chunking import chunk_document
from qa.ingest.loaders import SUFFIXES, iter_files
from qa.ingest.parallel import Job, Loaded, Loads
from qa.records import Chunk, Document, FileWarning, IndexReport, Skipped

# Chunks embedded (and committed) together: big enough for efficient batches, small
# enough that a killed run loses little and readers see progress.
EMBED_GROUP = 256
# For the passages limit, checked before chunking so a huge file is never tokenized: a
# passage of `chunk_tokens` tokens holds at most this many characters per token (English
# averages 4-5 with WordPiece; only runs of very long words go above 8).
MAX_CHARS_PER_TOKEN = 8

Progress = Callable[[str, int, int | None], None]


def _no_progress(event: str, n: int, total: int | None) -> None:
    pass


@dataclass
class _Todo:
    """A file that must be read: its stat, and what the index holds of it (or None)."""

    path: Path
    source: str
    info: os.stat_result
    old: object


@dataclass
class _Pending:
    path: Path
    source: str
    sha256: str
    mtime: float
    size: int
    doc: Document
    chunks: list[Chunk]
    existed: bool
    warnings: tuple[str, ...] = ()


class Writer:
    """The writing half of `Index` (which provides store, embedder, locks and vectors)."""

    def add(self, paths: Iterable[str | Path], progress: Progress | None = None) -> IndexReport:
        """Index new or changed files under `paths`; leave everything else alone."""
        return self._update(paths, remove_missing=False, progress=progress)

    def sync(self, paths: Iterable[str | Path], progress: Progress | None = None) -> IndexReport:
        """Like `add`, and also drop indexed files under `paths` that no longer exist."""
        return self._update(paths, remove_missing=True, progress=progress)

    def remove(self, source: str | Path) -> list[str]:
        """Remove a document (or every document under a folder); return the removed sources."""
        with self._writing, self._write_lock():
            self.refresh()
            with self._lock:
                stored = self.store.stored_docs()
                targets = self._match_sources(source, stored)
                if not targets:
                    raise BadInput(f"{source} is not in the index (see `qa list`)")
                vectors = self._current_vectors()
                removed_ids: list[int] = []
                with self.store.transaction() as conn:
                    for s in targets:
                        removed_ids += self.store.delete_document(conn, s)
                self._apply(vectors, removed_ids, np.zeros(0, np.int64), None)
            self._save_vectors()
            return targets

    def _match_sources(self, source: str | Path, stored: dict) -> list[str]:
        names = {str(source)}
        path = Path(source)
        if path.exists() or not path.is_absolute():
            names.add(self.source_for(path))
        exact = [s for s in names if s in stored]
        if exact:
            return exact
        prefixes = tuple(n.rstrip("/") + "/" for n in names)
        return sorted(s for s in stored if s.startswith(prefixes))

    def _update(self, paths, remove_missing: bool, progress: Progress | None) -> IndexReport:
        from qa.ingest import ocr

        with ocr.configured(progress=progress):  # pages read by OCR, here or in the workers
            return self._update_files(paths, remove_missing, progress)

    @staticmethod
    def _roots(paths) -> list[Path]:
        """`paths` as Paths; BadInput for one that does not exist."""
        roots = [Path(p) for p in paths]
        for root in roots:
            if not root.exists():
                raise BadInput(f"no such file or folder: {root}")
        return roots

    def _listed(self, roots: list[Path]) -> tuple[list[Path], list[Skipped]]:
        """The files under `roots`, and a failed Skipped for each folder that could not be
        listed."""
        folder_errors: list[tuple[Path, str]] = []
        files = list(iter_files(roots, folder_errors))
        skipped = [
            Skipped(display(self.source_for(f)), reason, failed=True) for f, reason in folder_errors
        ]
        return files, skipped

    def _update_files(self, paths, remove_missing: bool, progress: Progress | None):
        progress = progress or _no_progress
        t0 = time.perf_counter()
        roots = self._roots(paths)
        with self._writing, self._write_lock():
            self.refresh()
            with self._lock:
                stored = self.store.stored_docs()
            files, skipped = self._listed(roots)
            added, updated, unchanged = [], [], []
            seen: set[str] = set()
            notes: list[FileWarning] = []
            pending: list[_Pending] = []
            n_pending = 0
            embedded = 0
            progress("files", 0, len(files))
            checked = []
            for path in files:
                source = self.source_for(path)
                seen.add(source)
                checked.append((source, self._check(path, source, stored.get(source))))
            todo = [c for _, c in checked if isinstance(c, _Todo)]
            loads = Loads(self.settings.threads, threads=self.settings.threads).run(
                Job(t.path, t.source, t.old.sha256 if t.old is not None else None) for t in todo
            )
            try:
                for i, (source, check) in enumerate(checked, 1):
                    outcome = (
                        self._finish(check, next(loads)[1]) if isinstance(check, _Todo) else check
                    )
                    if outcome is None:
                        unchanged.append(source)
                    elif isinstance(outcome, Skipped):
                        skipped.append(outcome)
                    else:
                        pending.append(outcome)
                        n_pending += len(outcome.chunks)
                        notes += [FileWarning(source, w) for w in outcome.warnings]
                    if n_pending >= EMBED_GROUP:
                        embedded += self._commit(pending, progress)
                        for p in pending:
                            (updated if p.existed else added).append(p.source)
                        pending, n_pending = [], 0
                    progress("files", i, len(files))
            finally:
                loads.close()  # stops the worker processes
            if pending:
                embedded += self._commit(pending, progress)
                for p in pending:
                    (updated if p.existed else added).append(p.source)
            removed = self._settle(roots, stored, seen, remove_missing, bool(added or updated))
            return IndexReport(
                added=tuple(added),
                updated=tuple(updated),
                removed=tuple(removed),
                unchanged=tuple(unchanged),
                skipped=tuple(skipped),
                chunks_embedded=embedded,
                seconds=time.perf_counter() - t0,
                warnings=tuple(notes),
            )

    def _settle(self, roots, stored: dict, seen: set[str], remove_missing: bool, changed: bool):
        """What follows an update's commits (here and in qa.index.bulk): files no longer there
        removed, the roots remembered, the vectors saved and BM25 made ready for the first
        search; the removed sources."""
        removed: list[str] = []
        if remove_missing:
            # an unreadable file that was indexed before is kept (it was seen)
            removed = self._remove_missing(roots, stored, seen)
        self._remember_roots(roots)
        if changed or removed or not self._vectors_saved():
            self._save_vectors()
        with self._lock:
            self.store.prepare_bm25()
        return removed

    def _vectors_saved(self) -> bool:
        with self._lock:
            return self._vectors_path(self.store.generation()).is_file()

    def _check(self, path: Path, source: str, old) -> _Todo | Skipped | None:
        """What one file needs, from its name and stat alone: to be read (`_Todo`), nothing
        (None: unchanged since it was indexed), or to be skipped, and why."""
        if path.suffix.lower() not in SUFFIXES:
            return Skipped(source, f"unsupported file type {path.suffix or '(none)'}")
        if not valid_name(source):
            return Skipped(
                display(source), "the file name is not valid UTF-8: rename the file", failed=True
            )
        try:
            info = path.stat()
        except OSError as exc:
            reason = f"cannot read: {exc.strerror or exc}"
            if path.is_symlink():
                reason = (
                    "symbolic link loop"
                    if exc.errno == errno.ELOOP
                    else "broken symbolic link: its target does not exist"
                )
            return Skipped(source, reason, failed=True)
        if not stat_module.S_ISREG(info.st_mode):
            return Skipped(source, "not a regular file", failed=True)
        if old is not None and old.size == info.st_size and old.mtime == info.st_mtime:
            return None  # same size and modification time: not read again
        max_mb = self.settings.max_file_mb
        if info.st_size > max_mb * 1e6:
            return Skipped(
                source,
                f"too large: {_size(info.st_size)}, the limit is {max_mb:g} MB per file "
                "(raise it with --max-file-mb or QA_MAX_FILE_MB)",
                failed=True,
            )
        return _Todo(path, source, info, old)

    def _finish(self, todo: _Todo, loaded: Loaded) -> _Pending | Skipped | None:
        """Chunk a file read and loaded (in a worker or here): the work to commit, why it is
        skipped, or None if its content is what was indexed."""
        if loaded.error is not None:
            return Skipped(todo.source, loaded.error, failed=not loaded.skipped)
        if loaded.same:
            self._touch(todo.source, todo.info)
            return None
        doc = loaded.doc
        chunks = self._chunk_within_limit(doc)
        if isinstance(chunks, str):
            return Skipped(todo.source, chunks, failed=True)
        return _Pending(
            todo.path,
            todo.source,
            loaded.sha256,
            todo.info.st_mtime,
            todo.info.st_size,
            doc,
            chunks,
            todo.old is not None,
            tuple(getattr(doc, "warnings", ())),
        )

    def _touch(self, source: str, info: os.stat_result) -> None:
        """Record a new modification time for a file whose content did not change, so the
        next run skips it without reading it."""
        with self._lock:
            current = self._generation == self.store.generation()
            with self.store.transaction() as conn:
                conn.execute(
                    "UPDATE documents SET mtime = ?, size = ? WHERE source = ?",
                    (info.st_mtime, info.st_size, source),
                )
            if current:
                self._generation = self.store.generation()  # vectors are unchanged

    def _chunk_within_limit(self, doc: Document) -> list[Chunk] | str:
        """The document's chunks, or why there would be too many (`max_chunks_per_file`)."""
        limit = self.settings.max_chunks_per_file
        raise_it = "raise it with --max-chunks-per-file or QA_MAX_CHUNKS_PER_FILE"
        tokens = min(self.manifest["chunking"]["chunk_tokens"], self.embedder.max_tokens)
        most = limit * tokens * MAX_CHARS_PER_TOKEN
        if len(doc.text) > most:
            return (
                f"too long: {len(doc.text):,} characters of text, more than the limit of "
                f"{limit:,} passages per file can hold ({most:,}); {raise_it}"
            )
        chunks = self._chunk(doc)
        if len(chunks) > limit:
            return (
                f"too long: {len(chunks):,} passages, the limit is {limit:,} per file; {raise_it}"
            )
        return chunks

    def _chunk(self, doc: Document) -> list[Chunk]:
        limit = min(self.manifest["chunking"]["chunk_tokens"], self.embedder.max_tokens)
        overlap = self.manifest["chunking"]["overlap"]
        return chunk_document(doc, self.embedder.token_spans, limit, overlap)

    def _commit(self, pending: list[_Pending], progress: Progress) -> int:
        """Embed a group of documents (searches go on meanwhile), then write them in one
        transaction and mirror it in FAISS (searches wait for that, briefly)."""
        texts = [c.text for p in pending for c in p.chunks]
        self._check_dimension()
        progress("embed", 0, len(texts))
        embedded = self.embedder.embed(texts)
        progress("embed", len(texts), len(texts))
        removed: list[int] = []
        added: list[int] = []
        with self._lock:
            vectors = self._current_vectors()
            with self.store.transaction() as conn:
                offset = 0
                for p in pending:
                    removed += self.store.delete_document(conn, p.source)
                    n = len(p.chunks)
                    added += self.store.insert_document(
                        conn,
                        source=p.source,
                        sha256=p.sha256,
                        title=p.doc.title,
                        mtime=p.mtime,
                        size=p.size,
                        text=p.doc.text,
                        chunks=p.chunks,
                        vectors=embedded[offset : offset + n],
                    )
                    offset += n
            self._apply(vectors, removed, np.asarray(added, dtype=np.int64), embedded)
        return len(texts)

    def _apply(self, vectors, removed, added_ids: np.ndarray, added_vecs) -> None:
        """Mirror a committed transaction in the in-memory FAISS index."""
        ok = vectors.remove(removed)
        if ok and len(added_ids) and vectors.needs_training():
            ok = False
        if ok:
            vectors.add(added_ids, added_vecs)
        else:  # the index type cannot delete or is untrained: rebuild from the store
            vectors = self._rebuild_vectors(vectors.factory)
        self._vectors, self._generation = vectors, self.store.generation()

    def _remove_missing(self, roots: list[Path], stored: dict, seen: set[str]) -> list[str]:
        prefixes = []
        for root in roots:
            name = self.source_for(root)
            prefixes.append(name.rstrip("/") + "/" if root.is_dir() else name)
        gone = sorted(
            s
            for s in stored
            if s not in seen
            and any(s == p or (p.endswith("/") and s.startswith(p)) for p in prefixes)
        )
        if gone:
            removed_ids: list[int] = []
            with self._lock:
                vectors = self._current_vectors()
                with self.store.transaction() as conn:
                    for s in gone:
                        removed_ids += self.store.delete_document(conn, s)
                self._apply(vectors, removed_ids, np.zeros(0, np.int64), None)
        return gone

    def _remember_roots(self, roots: list[Path]) -> None:
        names = [self.source_for(r) for r in roots]
        with self._lock:
            known = self.store.get_meta("roots", [])
            merged = known + [n for n in names if n not in known]
            if merged != known:
                current = self._generation == self.store.generation()
                with self.store.transaction() as conn:
                    self.store.set_meta(conn, "roots", merged)
                if current:
                    self._generation = self.store.generation()  # vectors are unchanged


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def valid_name(source: str) -> bool:
    """Whether a file name can be stored (names that are not UTF-8 hold surrogates)."""
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display(name: str) -> str:
    """`name` safe to print on one line: undecodable bytes as \\xNN."""
    if valid_name(name):
        return name
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")
