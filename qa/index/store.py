"""SQLite storage: documents, chunks, their vectors, and an FTS5 table for BM25.

SQLite is the index's source of truth. The FAISS file beside it is derived from the
`vectors` table and stamped with the store's `generation`, which every committed
change increments; a FAISS file of another generation is rebuilt from here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import IndexCorrupt, IndexLocked, QAError
from qa.records import Chunk, DocumentInfo, Locator
from qa.text import STOPWORDS  # common words that only add noise to a BM25 OR-query

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    mtime REAL NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0,
    indexed_at REAL NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    page INTEGER,
    headings TEXT NOT NULL DEFAULT '[]',
    text TEXT NOT NULL,
    locator TEXT
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    vector BLOB NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0');
"""
# chunks.locator (JSON of a `Locator`, or NULL) came after the first indexes were made:
# an index without the column gets it on opening (its chunks have no locator; PDFs keep
# `page`), or, if the database is read-only, is read without it.
ADD_LOCATOR = "ALTER TABLE chunks ADD COLUMN locator TEXT"


@dataclass(frozen=True)
class StoredDoc:
    id: int
    source: str
    sha256: str
    mtime: float
    size: int


@dataclass(frozen=True)
class ChunkRow:
    id: int
    source: str
    start: int
    end: int
    page: int | None
    headings: tuple[str, ...]
    text: str
    locator: Locator | None = None


def fts_query(text: str) -> str:
    """An FTS5 OR-query of the words of `text`, stopwords dropped, each word quoted."""
    return " OR ".join(f'"{w}"' for w in query_words(text))


# QA_BM25=auto answers from the in-memory index from this many chunks on. FTS5 scores every
# row holding a query term: at 1M chunks 248k rows, 261 ms of CPU a query against 22.6 ms in
# memory (`qa bench search --sizes 1000000`), with the same results (SQuAD dev: all 10,570
# retrieved lists identical); its cost grows with the collection, and from 100k chunks the
# in-memory index costs little (~1.3 KB of RAM a chunk, built once and saved).
BM25_MEMORY_MIN = 100_000


def query_words(text: str) -> list[str]:
    """The words `fts_query` puts in its OR-query, in order."""
    words = re.findall(r"\w+", text.lower())
    keep = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(keep))


def database_error(path: Path, exc: sqlite3.Error) -> QAError:
    """A one-line `QAError` for an SQLite error: busy, or a damaged database to rebuild."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in detail or "busy" in detail):
        return IndexLocked(f"the index database {path} is busy ({detail}); try again")
    return IndexCorrupt(
        f"the index database {path} is damaged or unreadable ({detail}); rebuild it: "
        f"`qa index --rebuild --index {path.parent}`"
    )


def _checked(method):
    """Turn SQLite errors raised by a Store method into `database_error`s."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise database_error(self.path, exc) from exc

    return wrapper


class Store:
    """The SQLite database of one index. One connection, shared by threads: the `Index`
    serialises its use (a transaction must not interleave with other statements)."""

    def __init__(self, path: Path, bm25: str = "fts5") -> None:
        self.path = Path(path)
        self.bm25_engine = bm25  # "fts5", "memory" (see qa.index.lexical) or "auto"
        self._memory = None  # the MemoryBM25, made on the first "memory" query
        self._auto: tuple[int, str] | None = None  # (generation, engine) "auto" chose
        try:
            self.conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.executescript(SCHEMA)
            self.has_locator = self._migrate_locator()
        except sqlite3.Error as exc:
            raise database_error(self.path, exc) from exc

    def _migrate_locator(self) -> bool:
        """Whether chunks have the locator column, adding it to an older index if need be."""
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(chunks)")}
        if "locator" in columns:
            return True
        try:
            self.conn.execute(ADD_LOCATOR)
        except sqlite3.OperationalError:  # read-only, or another process added it meanwhile
            columns = {r[1] for r in self.conn.execute("PRAGMA table_info(chunks)")}
            return "locator" in columns
        return True

    def close(self) -> None:
        """Close the connection, folding the write-ahead log into the database first so the
        database file is complete on its own (a rebuild moves it into place)."""
        # busy (another process reads) or read-only: SQLite checkpoints later
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._save_memory()
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write that bumps the generation; rolled back on any error."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise database_error(self.path, exc) from exc
        try:
            yield self.conn
            self.conn.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
            )
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise database_error(self.path, exc) from exc
            raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one committed state, even if another process writes meanwhile."""
        if self.conn.in_transaction:
            yield
            return
        try:
            self.conn.execute("BEGIN DEFERRED")
        except sqlite3.Error as exc:
            raise database_error(self.path, exc) from exc
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    # --- reads ---------------------------------------------------------------

    @_checked
    def generation(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0])

    @_checked
    def get_meta(self, key: str, default=None):
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, conn: sqlite3.Connection, key: str, value) -> None:
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    @_checked
    def stored_docs(self) -> dict[str, StoredDoc]:
        rows = self.conn.execute("SELECT id, source, sha256, mtime, size FROM documents")
        return {r[1]: StoredDoc(*r) for r in rows}

    @_checked
    def documents(self) -> list[DocumentInfo]:
        rows = self.conn.execute(
            "SELECT d.source, d.sha256, d.title, d.mtime, d.size, COUNT(c.id) "
            "FROM documents d LEFT JOIN chunks c ON c.doc_id = d.id "
            "GROUP BY d.id ORDER BY d.source"
        )
        return [DocumentInfo(*r) for r in rows]

    @_checked
    def document_text(self, source: str) -> str | None:
        row = self.conn.execute("SELECT text FROM documents WHERE source = ?", (source,)).fetchone()
        return row[0] if row else None

    @_checked
    def count_chunks(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    @_checked
    def vector_ids(self) -> np.ndarray:
        """Every chunk id that has a vector, ascending."""
        rows = self.conn.execute("SELECT chunk_id FROM vectors ORDER BY chunk_id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    @_checked
    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        out: dict[int, ChunkRow] = {}
        for batch in _batches(list(ids), 500):
            marks = ",".join("?" * len(batch))
            locator = "c.locator" if self.has_locator else "NULL"
            rows = self.conn.execute(
                'SELECT c.id, d.source, c.start, c."end", c.page, c.headings, c.text, '
                f"{locator} FROM chunks c JOIN documents d ON d.id = c.doc_id "
                f"WHERE c.id IN ({marks})",
                batch,
            )
            for r in rows:
                out[r[0]] = ChunkRow(
                    r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5])), r[6], _locator(r[7])
                )
        return out

    @_checked
    def chunk_ids_for_sources(self, sources: Iterable[str]) -> list[int]:
        sources = list(sources)
        marks = ",".join("?" * len(sources))
        rows = self.conn.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id "
            f"WHERE d.source IN ({marks})",
            sources,
        )
        return [r[0] for r in rows]

    def iter_vectors(self, batch: int = 8192) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (ids, vectors) in id order, a batch at a time."""
        last = -1
        while True:
            try:
                rows = self.conn.execute(
                    "SELECT chunk_id, vector FROM vectors WHERE chunk_id > ? "
                    "ORDER BY chunk_id LIMIT ?",
                    (last, batch),
                ).fetchall()
            except sqlite3.Error as exc:
                raise database_error(self.path, exc) from exc
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            try:
                vecs = np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            except ValueError as exc:  # vectors of different lengths
                raise IndexCorrupt(
                    f"the index database {self.path} holds damaged vectors; rebuild it: "
                    f"`qa index --rebuild --index {self.path.parent}`"
                ) from exc
            yield ids, vecs
            last = int(ids[-1])

    @_checked
    def vectors_for(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the given chunk ids that have vectors, in id order."""
        got_ids: list[int] = []
        vecs: list[np.ndarray] = []
        for batch in _batches(sorted(int(i) for i in ids), 500):
            marks = ",".join("?" * len(batch))
            rows = self.conn.execute(
                f"SELECT chunk_id, vector FROM vectors WHERE chunk_id IN ({marks}) "
                "ORDER BY chunk_id",
                batch,
            ).fetchall()
            got_ids += [r[0] for r in rows]
            vecs += [np.frombuffer(r[1], dtype=np.float32) for r in rows]
        if not vecs:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return np.asarray(got_ids, dtype=np.int64), np.vstack(vecs)

    @_checked
    def bm25(self, query: str, limit: int, sources: Sequence[str] | None = None):
        """(chunk_id, score) best first; higher score is better. FTS5's bm25() ranking, from
        FTS5 or (`bm25_engine == "memory"`) from the in-memory index, which gives the same;
        "auto" is the in-memory index from BM25_MEMORY_MIN chunks on."""
        match = fts_query(query)
        if not match:
            return []
        if self.engine() == "memory":
            allowed = None
            if sources:
                allowed = np.asarray(self.chunk_ids_for_sources(sources), np.int64)
            return self.memory_bm25().search(query_words(query), limit, allowed)
        sql = "SELECT f.rowid, -bm25(chunks_fts) AS s FROM chunks_fts f"
        args: list = [match]
        if sources:
            marks = ",".join("?" * len(sources))
            sql += (
                " JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.doc_id "
                f"WHERE chunks_fts MATCH ? AND d.source IN ({marks})"
            )
            args += list(sources)
        else:
            sql += " WHERE chunks_fts MATCH ?"
        sql += " ORDER BY bm25(chunks_fts) LIMIT ?"
        args.append(limit)
        return [(int(r[0]), float(r[1])) for r in self.conn.execute(sql, args)]

    def engine(self) -> str:
        """The BM25 engine that answers now ("auto" resolved by the number of chunks)."""
        if self.bm25_engine != "auto":
            return self.bm25_engine
        if self._memory is not None:
            return "memory"  # once built, kept: it is kept in step and costs no more
        generation = self.generation()
        if self._auto is None or self._auto[0] != generation:
            n = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            self._auto = (generation, "memory" if n >= BM25_MEMORY_MIN else "fts5")
        return self._auto[1]

    def memory_bm25(self):
        """The in-memory BM25 index caught up with the committed chunks (loaded from its file
        beside the database, or built, on first use)."""
        from qa.index.lexical import SAVE_MIN, MemoryBM25

        with self.snapshot():
            generation = self.generation()
            if self._memory is None:
                self._memory = MemoryBM25.load(self.memory_path) or MemoryBM25()
            memory = self._memory
            if memory.generation != generation:
                was = len(memory)
                memory.sync(self.conn, generation)
                if not was and len(memory) >= SAVE_MIN:
                    self._save_memory()
        return memory

    def prepare_bm25(self) -> None:
        """Bring the in-memory BM25 index up to date now, and save it, if that engine answers
        this store's queries; after indexing, so the first search does not build it (at 1M
        chunks that took minutes, under the index lock)."""
        if self.engine() == "memory":
            self.memory_bm25()
            self._save_memory()

    @property
    def memory_path(self) -> Path:
        return self.path.with_name(self.path.name + "-bm25.npz")

    def _save_memory(self) -> None:
        """Save the in-memory BM25 index if it changed and is large enough to be worth it."""
        from qa.index.lexical import SAVE_MIN

        if self._memory is not None and self._memory.dirty and len(self._memory) >= SAVE_MIN:
            self._memory.save(self.memory_path)

    # --- writes (inside `transaction()`) ---------------------------------------

    def delete_document(self, conn: sqlite3.Connection, source: str) -> list[int]:
        """Delete a document with its chunks and vectors; return the removed chunk ids."""
        row = conn.execute("SELECT id FROM documents WHERE source = ?", (source,)).fetchone()
        if row is None:
            return []
        ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (row[0],))]
        conn.execute(
            "DELETE FROM vectors WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = ?)",
            (row[0],),
        )
        conn.execute("DELETE FROM chunks WHERE doc_id = ?", (row[0],))
        conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
        return ids

    def insert_document(
        self,
        conn: sqlite3.Connection,
        *,
        source: str,
        sha256: str,
        title: str,
        mtime: float,
        size: int,
        text: str,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
    ) -> list[int]:
        """Insert a document with its chunks and vectors; return the new chunk ids."""
        cur = conn.execute(
            "INSERT INTO documents(source, sha256, title, mtime, size, indexed_at, text) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (source, sha256, title, mtime, size, time.time(), text),
        )
        doc_id = cur.lastrowid
        ids = []
        for chunk, vec in zip(chunks, vectors, strict=True):
            locator = getattr(chunk, "locator", None)
            cur = conn.execute(
                'INSERT INTO chunks(doc_id, ordinal, start, "end", page, headings, text, locator) '
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    doc_id,
                    chunk.ordinal,
                    chunk.start,
                    chunk.end,
                    chunk.page,
                    json.dumps(list(chunk.headings)),
                    chunk.text,
                    json.dumps(locator.to_dict()) if locator is not None else None,
                ),
            )
            ids.append(cur.lastrowid)
            conn.execute(
                "INSERT INTO vectors(chunk_id, vector) VALUES (?, ?)",
                (cur.lastrowid, np.asarray(vec, dtype=np.float32).tobytes()),
            )
        return ids


def _locator(raw: str | None) -> Locator | None:
    """The `Locator` stored as JSON (None for NULL, or anything unreadable)."""
    if not raw:
        return None
    try:
        return Locator.from_dict(json.loads(raw))
    except (ValueError, TypeError):
        return None


def _batches(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
