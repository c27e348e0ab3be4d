"""BM25 from an in-memory inverted index (`QA_BM25=memory`): FTS5's ranking, faster at scale.

FTS5 has no top-k pruning: an OR query scores every row that holds any of its terms through
an auxiliary-function callback, which at 1M chunks took 714 ms a query here (`qa bench
search --sizes 1000000`). This index keeps the same postings as numpy arrays (per term: the
documents holding it and how often) and scores a query's postings in a few vectorised
passes, with FTS5's own formula (fts5_aux.c):

    idf(t)   = log((N - df + 0.5) / (df + 0.5)), or 1e-6 where that is <= 0
    score(d) = sum over the query's terms t in d of
               idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avglen)),  k1 1.2, b .75

with N, df and avglen over the live chunks, so the scores are FTS5's. The terms are FTS5's
too: text is split into words as unicode61 splits it, and each new word is turned into its
terms by an in-memory FTS5 table with the store's own tokenizer (Porter over unicode61), so
the stems cannot drift from the ones FTS5 indexes. A quoted query word that FTS5 would
split into a phrase ("foo_bar") is searched here as its terms, not as the phrase.

Kept in step with the store by chunk id (chunk ids are never reused): `sync` marks the
chunks no longer stored as dead (left out of N, df and results at once) and indexes the new
ones into a small extra segment; segments are merged, and dead postings dropped, when there
are too many of them. A large index is saved beside its database (`save`) so a new process
does not tokenize every chunk again; the file is only a cache, checked against the store by
the same chunk-id sync.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

TOKENIZE = "porter unicode61 remove_diacritics 2"  # the store's FTS5 tokenizer
WORD = re.compile(r"[^\W_]+")  # unicode61's tokens: runs of letters and digits
K1, B = 1.2, 0.75  # FTS5's bm25() defaults
MIN_IDF = 1e-6  # FTS5 replaces an idf <= 0 (a term in over half the rows) with this
MAX_SEGMENTS = 4  # more than this many segments, or DEAD_SHARE dead chunks: merge
DEAD_SHARE = 0.2
SAVE_MIN = 50_000  # chunks below which the index is rebuilt on opening rather than saved
BATCH = 2_000  # chunks tokenized together
FORMAT = 1


class Terms:
    """Words to FTS5's terms, asked of an in-memory FTS5 table with the store's tokenizer."""

    def __init__(self) -> None:
        self.memo: dict[str, tuple[str, ...]] = {}
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)

    def learn(self, words: Iterable[str]) -> None:
        new = [w for w in dict.fromkeys(words) if w not in self.memo]
        if not new:
            return
        c = self._conn
        c.execute("DROP TABLE IF EXISTS v")
        c.execute("DROP TABLE IF EXISTS t")
        c.execute(f"CREATE VIRTUAL TABLE t USING fts5(w, tokenize='{TOKENIZE}')")
        c.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        c.executemany("INSERT INTO t(rowid, w) VALUES (?, ?)", enumerate(new))
        found: dict[int, list[tuple[int, str]]] = {}
        for doc, offset, term in c.execute("SELECT doc, offset, term FROM v"):
            found.setdefault(doc, []).append((offset, term))
        for i, w in enumerate(new):
            self.memo[w] = tuple(t for _, t in sorted(found.get(i, ())))

    def of(self, text: str) -> list[str]:
        """The terms of `text`, in order, as FTS5 indexes them."""
        words = WORD.findall(text)
        self.learn(words)
        memo = self.memo
        return [t for w in words for t in memo[w]]


@dataclass
class Segment:
    """Postings of some chunks: term t's are docs[indptr[t]:indptr[t + 1]] (positions in
    `ids`) with their counts in tf; terms numbered after the segment was made have none."""

    ids: np.ndarray  # chunk ids, ascending
    lengths: np.ndarray  # terms per chunk (FTS5's column size)
    indptr: np.ndarray  # int64, vocabulary size at the time + 1
    docs: np.ndarray  # int32 positions
    tf: np.ndarray  # float32 counts
    alive: np.ndarray  # bool per chunk

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        if term + 1 >= len(self.indptr):
            return self.docs[:0], self.tf[:0]
        a, b = self.indptr[term], self.indptr[term + 1]
        return self.docs[a:b], self.tf[a:b]


class MemoryBM25:
    """See the module docstring. Not thread-safe: the store's owner serialises its use."""

    def __init__(self) -> None:
        self.terms = Terms()
        self.vocab: dict[str, int] = {}  # term -> id
        self.word_ids: dict[str, int] = {}  # word of one term -> the term's id
        self.odd_words: set[str] = set()  # words of no term or of several
        self.segments: list[Segment] = []
        self.live = 0  # chunks alive
        self.live_length = 0  # their terms in all
        self.generation = -1  # the store's generation this was last synced to
        self.dirty = False  # changed since loaded or saved

    def __len__(self) -> int:
        return self.live

    # --- building --------------------------------------------------------------------

    def _segment(self, ids: Sequence[int], texts: Sequence[str]) -> Segment:
        """A segment of these chunks (ids ascending)."""
        vocab = self.vocab
        pairs: list[np.ndarray] = []  # (term << 32 | doc) keys, one per term in a doc
        counts: list[np.ndarray] = []  # how often
        lengths = np.zeros(len(ids), np.int32)
        for start in range(0, len(texts), BATCH):
            part = texts[start : start + BATCH]
            tids, n = self._term_ids([WORD.findall(text) for text in part])
            lengths[start : start + len(part)] = n
            docs = np.repeat(np.arange(start, start + len(part), dtype=np.int64), n)
            key, count = np.unique((tids << 32) | docs, return_counts=True)
            pairs.append(key)
            counts.append(count)
        key = np.concatenate(pairs) if pairs else np.zeros(0, np.int64)
        tf = np.concatenate(counts) if counts else np.zeros(0, np.int64)
        order = np.argsort(key >> 32, kind="stable")  # by term; docs stay ascending
        key, tf = key[order], tf[order]
        terms = key >> 32
        indptr = np.zeros(len(vocab) + 1, np.int64)
        np.cumsum(np.bincount(terms, minlength=len(vocab)), out=indptr[1:])
        return Segment(
            np.asarray(ids, np.int64),
            lengths,
            indptr,
            (key & 0xFFFFFFFF).astype(np.int32),
            tf.astype(np.float32),
            np.ones(len(ids), bool),
        )

    def _term_ids(self, words_per_doc: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(the vocabulary ids of the docs' terms in order, terms per doc), new terms added
        to the vocabulary. Almost every word is one term: those go through one dict lookup."""
        flat = list(chain.from_iterable(words_per_doc))
        single = self.word_ids
        unique = set(flat)
        new = [w for w in unique if w not in single and w not in self.odd_words]
        if new:
            self.terms.learn(new)
            for w in new:
                terms = self.terms.memo[w]
                if len(terms) == 1:
                    single[w] = self.vocab.setdefault(terms[0], len(self.vocab))
                else:  # no term, or several (a phrase to FTS5)
                    self.odd_words.add(w)
                    for t in terms:
                        self.vocab.setdefault(t, len(self.vocab))
        if unique.isdisjoint(self.odd_words):
            n = np.fromiter(map(len, words_per_doc), np.int64, count=len(words_per_doc))
            return np.fromiter(map(single.__getitem__, flat), np.int64, count=len(flat)), n
        memo, vocab = self.terms.memo, self.vocab
        per_doc = [[vocab[t] for w in words for t in memo[w]] for words in words_per_doc]
        n = np.fromiter(map(len, per_doc), np.int64, count=len(per_doc))
        return np.fromiter(chain.from_iterable(per_doc), np.int64, count=int(n.sum())), n

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        """Index chunks whose ids are all above the ones held."""
        if not len(ids):
            return
        seg = self._segment(ids, texts)
        self.segments.append(seg)
        self.live += len(seg.ids)
        self.live_length += int(seg.lengths.sum())
        self.dirty = True
        self._maybe_merge()

    def remove(self, ids: Iterable[int]) -> None:
        ids = np.unique(np.asarray(list(ids), np.int64))
        for seg in self.segments:
            pos = np.flatnonzero(np.isin(seg.ids, ids) & seg.alive)
            if len(pos):
                seg.alive[pos] = False
                self.live -= len(pos)
                self.live_length -= int(seg.lengths[pos].sum())
                self.dirty = True
        self._maybe_merge()

    def ids(self, alive_only: bool = True) -> np.ndarray:
        parts = [s.ids[s.alive] if alive_only else s.ids for s in self.segments]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def _maybe_merge(self) -> None:
        held = sum(len(s.ids) for s in self.segments)
        if len(self.segments) > MAX_SEGMENTS or held - self.live > DEAD_SHARE * max(1, held):
            self.merge()

    def merge(self) -> None:
        """One segment of the live chunks (postings kept, nothing tokenized again)."""
        if len(self.segments) <= 1 and all(s.alive.all() for s in self.segments):
            return
        ids, lengths, keys, tfs = [], [], [], []
        offset = 0
        for seg in self.segments:
            new_pos = np.cumsum(seg.alive) - 1 + offset  # live chunks renumbered in order
            terms = np.repeat(np.arange(len(seg.indptr) - 1, dtype=np.int64), np.diff(seg.indptr))
            keep = seg.alive[seg.docs]
            keys.append((terms[keep] << 32) | new_pos[seg.docs[keep]])
            tfs.append(seg.tf[keep])
            ids.append(seg.ids[seg.alive])
            lengths.append(seg.lengths[seg.alive])
            offset += int(seg.alive.sum())
        key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        tf = np.concatenate(tfs) if tfs else np.zeros(0, np.float32)
        order = np.argsort(key >> 32, kind="stable")
        key, tf = key[order], tf[order]
        indptr = np.zeros(len(self.vocab) + 1, np.int64)
        np.cumsum(np.bincount(key >> 32, minlength=len(self.vocab)), out=indptr[1:])
        self.segments = [
            Segment(
                np.concatenate(ids) if ids else np.zeros(0, np.int64),
                np.concatenate(lengths) if lengths else np.zeros(0, np.int32),
                indptr,
                (key & 0xFFFFFFFF).astype(np.int32),
                tf,
                np.ones(offset, bool),
            )
        ]
        self.dirty = True

    # --- searching -------------------------------------------------------------------

    def query_terms(self, words: Sequence[str]) -> list[int]:
        """The vocabulary ids of the words' terms (unknown terms match nothing). Two words
        with one stem count twice, as FTS5 scores each quoted word of the query on its own."""
        self.terms.learn(words)
        return [self.vocab[t] for w in words for t in self.terms.memo[w] if t in self.vocab]

    def search(
        self, words: Sequence[str], limit: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) best first, at most `limit`, optionally only `allowed` ids."""
        terms = self.query_terms(words)
        if not terms or limit <= 0 or not self.live:
            return []
        n, avg = self.live, self.live_length / self.live
        offsets = np.cumsum([0] + [len(s.ids) for s in self.segments])
        pos_parts, score_parts = [], []
        for t, times in Counter(terms).items():
            hits = [(seg, *seg.postings(t)) for seg in self.segments]
            hits = [(seg, d[seg.alive[d]], f[seg.alive[d]]) for seg, d, f in hits]
            df = sum(len(d) for _, d, _ in hits)
            if not df:
                continue
            idf = math.log((n - df + 0.5) / (df + 0.5))
            idf = idf if idf > 0 else MIN_IDF
            for (seg, d, f), off in zip(hits, offsets, strict=False):
                if not len(d):
                    continue
                norm = K1 * (1 - B + B * seg.lengths[d] / avg)
                score_parts.append(times * idf * f * (K1 + 1) / (f + norm))
                pos_parts.append(d.astype(np.int64) + off)
        if not pos_parts:
            return []
        pos = np.concatenate(pos_parts)
        scores = np.bincount(pos, np.concatenate(score_parts), minlength=int(offsets[-1]))
        all_ids = np.concatenate([s.ids for s in self.segments])
        touched = np.flatnonzero(scores)
        if allowed is not None:
            touched = touched[np.isin(all_ids[touched], allowed)]
        if len(touched) > limit:
            part = np.argpartition(-scores[touched], limit - 1)[:limit]
            # keep every row tied with the last one, so ties break by id as below
            cut = scores[touched[part]].min()
            touched = touched[scores[touched] >= cut]
        order = np.lexsort((all_ids[touched], -scores[touched]))[:limit]
        best = touched[order]
        return [(int(i), float(s)) for i, s in zip(all_ids[best], scores[best], strict=True)]

    # --- keeping in step with the store ------------------------------------------------

    def sync(self, conn: sqlite3.Connection, generation: int) -> tuple[int, int]:
        """Catch up with the store's chunks: (added, removed)."""
        rows = conn.execute("SELECT id FROM chunks ORDER BY id").fetchall()
        stored = np.fromiter((r[0] for r in rows), np.int64, count=len(rows))
        held = self.ids(alive_only=False)
        gone = np.setdiff1d(self.ids(), stored, assume_unique=True)
        new = np.setdiff1d(stored, held, assume_unique=True)
        if len(gone):
            self.remove(gone)
        if len(new):
            if len(held) and new[0] < held.max():  # cannot happen with AUTOINCREMENT ids
                self.__init__()
                return self.sync(conn, generation)
            for start in range(0, len(new), 50_000):
                part = new[start : start + 50_000].tolist()
                texts = _texts(conn, part)
                self.add(part, [texts[i] for i in part])
            if len(self.segments) > 1 and len(new) > DEAD_SHARE * self.live:
                self.merge()
        self.generation = generation
        return len(new), len(gone)

    def save(self, path: Path) -> None:
        """Write as one segment, atomically (an unwritable folder is left without it)."""
        self.merge()
        seg = self.segments[0] if self.segments else self._segment([], [])
        words = sorted(self.vocab, key=self.vocab.__getitem__)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    format=np.asarray(FORMAT),
                    generation=np.asarray(self.generation),
                    vocab=np.frombuffer("\n".join(words).encode(), np.uint8),
                    ids=seg.ids,
                    lengths=seg.lengths,
                    indptr=seg.indptr,
                    docs=seg.docs,
                    tf=seg.tf,
                )
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            self.dirty = False
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()

    @classmethod
    def load(cls, path: Path) -> MemoryBM25 | None:
        """The saved index, or None if there is none or it cannot be read."""
        try:
            with np.load(path) as z:
                if int(z["format"]) != FORMAT:
                    return None
                raw = z["vocab"].tobytes().decode()
                self = cls()
                self.vocab = {w: i for i, w in enumerate(raw.split("\n"))} if raw else {}
                seg = Segment(z["ids"], z["lengths"], z["indptr"], z["docs"], z["tf"], None)
                self.generation = int(z["generation"])
        except (OSError, ValueError, KeyError, EOFError):
            return None
        if len(seg.indptr) != len(self.vocab) + 1:
            return None
        seg.alive = np.ones(len(seg.ids), bool)
        self.segments = [seg]
        self.live = len(seg.ids)
        self.live_length = int(seg.lengths.sum())
        return self


def _texts(conn: sqlite3.Connection, ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        batch = ids[i : i + 500]
        marks = ",".join("?" * len(batch))
        out.update(conn.execute(f"SELECT id, text FROM chunks WHERE id IN ({marks})", batch))
    return out
