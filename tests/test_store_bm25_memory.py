"""The in-memory BM25 engine (QA_BM25=memory): FTS5's ranking and scores, kept in step with
the store through adds and removals, its saved file, source filters, and the setting."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest
from fakes import FakeEmbedder

from qa import Index
from qa.config import Settings
from qa.errors import BadInput
from qa.index import lexical
from qa.index.lexical import MemoryBM25, Terms
from qa.index.store import Store

WORDS = (
    "river rivers running runner ran city cities empire imperial music musical musician "
    "science scientific energy water waters market marketing court army armies church king "
    "kings queen village engine engineering theory light planet ocean forest bridge railway "
    "café naïve Zürich 1990s 2,000 U.S. don't self-driving COVID-19 x_y the of a"
).split()
QUERIES = [
    "river running",
    "Which cities had an imperial army?",
    "music musician market",
    "the",  # only a stopword: searched as it is
    "naive cafe zurich",
    "1990s 2,000",
    "unknownword river",
    "engineering engines engine",
]


def texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40))) for _ in range(n)]


def fill(store: Store, docs: dict[str, list[str]]) -> None:
    with store.transaction() as conn:
        for source, chunks in docs.items():
            store.delete_document(conn, source)
            cur = conn.execute(
                "INSERT INTO documents(source, sha256, indexed_at, text) VALUES (?, '', 0, '')",
                (source,),
            )
            for i, text in enumerate(chunks):
                conn.execute(
                    'INSERT INTO chunks(doc_id, ordinal, start, "end", text) VALUES (?, ?, 0, ?, ?)',
                    (cur.lastrowid, i, len(text), text),
                )


def assert_same(fts: list, mem: list) -> None:
    """Same scores in the same order; ids equal except within ties."""
    assert len(fts) == len(mem)
    np.testing.assert_allclose([s for _, s in mem], [s for _, s in fts], rtol=1e-5)
    by_score: dict[float, set] = {}
    for (a, s), (b, _) in zip(fts, mem, strict=True):
        by_score.setdefault(round(s, 5), set()).update({("fts", a), ("mem", b)})
    for group in by_score.values():
        assert {i for k, i in group if k == "fts"} == {i for k, i in group if k == "mem"} or (
            len(group) > 2
        )


def both(store: Store, query: str, limit: int, sources=None):
    store.bm25_engine = "fts5"
    fts = store.bm25(query, limit, sources)
    store.bm25_engine = "memory"
    return fts, store.bm25(query, limit, sources)


def test_terms_are_fts5s_own():
    t = Terms()
    assert t.of("Running runners RAN, café naïve!") == ["run", "runner", "ran", "cafe", "naiv"]
    assert t.of("x_y COVID-19") == ["x", "y", "covid", "19"]


@pytest.mark.parametrize("limit", [3, 10, 200])
def test_memory_engine_ranks_and_scores_as_fts5(tmp_path, limit):
    store = Store(tmp_path / "s.sqlite")
    fill(store, {f"d{i}": texts(30, seed=i) for i in range(10)})
    for q in QUERIES:
        fts, mem = both(store, q, limit)
        assert fts, q
        assert_same(fts, mem)
    store.close()


def test_memory_engine_follows_adds_and_removals(tmp_path, monkeypatch):
    monkeypatch.setattr(lexical, "MAX_SEGMENTS", 2)  # merges happen along the way
    store = Store(tmp_path / "s.sqlite", bm25="memory")
    fill(store, {f"d{i}": texts(20, seed=i) for i in range(4)})
    store.bm25("river", 5)  # built
    memory = store._memory
    for step in range(6):
        fill(store, {f"new{step}": texts(15, seed=100 + step)})  # added
        fill(store, {f"d{step % 4}": texts(10, seed=200 + step)})  # replaced
        with store.transaction() as conn:
            store.delete_document(conn, f"new{step - 1}")  # removed
        for q in QUERIES:
            assert_same(*both(store, q, 25))
        assert store._memory is memory  # caught up, not rebuilt
        assert len(memory) == store.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert len(memory.segments) <= 3
    store.close()


def test_source_filter(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    fill(store, {f"d{i}": texts(30, seed=i) for i in range(5)})
    for q in QUERIES[:3]:
        fts, mem = both(store, q, 10, sources=["d1", "d3"])
        assert_same(fts, mem)
        allowed = set(store.chunk_ids_for_sources(["d1", "d3"]))
        assert {i for i, _ in mem} <= allowed
    store.close()


def test_saved_file_is_loaded_and_caught_up(tmp_path, monkeypatch):
    monkeypatch.setattr(lexical, "SAVE_MIN", 1)
    path = tmp_path / "s.sqlite"
    store = Store(path, bm25="memory")
    fill(store, {f"d{i}": texts(20, seed=i) for i in range(3)})
    want = store.bm25("river city", 30)
    store.close()
    assert store.memory_path.is_file()

    store = Store(path, bm25="memory")
    loaded = MemoryBM25.load(store.memory_path)
    assert loaded is not None and len(loaded) == 60
    assert store.bm25("river city", 30) == want
    fill(store, {"d9": texts(10, seed=9)})
    with store.transaction() as conn:
        store.delete_document(conn, "d0")
    assert_same(*both(store, "river city", 30))
    store.close()

    store.memory_path.write_bytes(b"not a saved index")  # a damaged cache is rebuilt
    store = Store(path, bm25="memory")
    assert_same(*both(store, "river city", 30))
    store.close()


def test_index_with_the_memory_engine_matches_fts5(docs, tmp_path):
    emb = FakeEmbedder()
    results = {}
    for engine in ("fts5", "memory"):
        root = tmp_path / engine
        folder = root / "docs"
        shutil.copytree(docs, folder)
        s = Settings.load(index_dir=root / "index", chunk_tokens=48, chunk_overlap=8, bm25=engine)
        index = Index.build([folder], s.index_dir, settings=s, embedder=emb)
        (folder / "new.txt").write_text("The Nile floods every year.", encoding="utf-8")
        index.sync([folder])
        index.remove("docs/cats.txt")
        results[engine] = [
            [(h.source, h.start, round(h.score, 5)) for h in index.search(q, k=3, mode=m)]
            for q in ("Nile river", "cats sleep", "volcano Sicily")
            for m in ("bm25", "hybrid")
        ]
        index.close()
    assert results["memory"] == results["fts5"]
    assert any(results["fts5"])


def test_bad_engine_setting(monkeypatch):
    monkeypatch.setenv("QA_BM25", "lucene")
    with pytest.raises(BadInput, match="QA_BM25"):
        Settings.load()
    monkeypatch.setenv("QA_BM25", "memory")
    assert Settings.load().bm25 == "memory"


def test_auto_answers_from_memory_from_the_threshold_on(tmp_path, monkeypatch):
    from qa.index import store as store_mod

    monkeypatch.setattr(store_mod, "BM25_MEMORY_MIN", 50)
    assert Settings.load().bm25 == "auto"
    store = Store(tmp_path / "s.sqlite", bm25="auto")
    fill(store, {"a": texts(30)})
    want = Store(tmp_path / "s.sqlite").bm25("river city", 10)  # FTS5
    assert store.engine() == "fts5" and store.bm25("river city", 10) == want
    assert store._memory is None
    fill(store, {"b": texts(30, seed=1)})
    assert store.engine() == "memory"
    assert_same(store.bm25("river city", 10), store._memory.search(["river", "city"], 10))
    with store.transaction() as conn:
        store.delete_document(conn, "b")
    assert store.engine() == "memory"  # once built it stays: kept in step
    assert_same(*both(store, "river city", 10))
    store.close()


def test_indexing_prepares_the_memory_index_for_the_first_search(docs, tmp_path, monkeypatch):
    """`qa index` builds and saves the in-memory BM25 index, so a new process's first
    search loads it instead of tokenizing every chunk under the index lock."""
    monkeypatch.setattr(lexical, "SAVE_MIN", 1)
    s = Settings.load(index_dir=tmp_path / "index", chunk_tokens=48, chunk_overlap=8, bm25="memory")
    index = Index.build([docs], s.index_dir, settings=s, embedder=FakeEmbedder())
    saved = list(s.index_dir.rglob("*-bm25.npz"))
    assert len(saved) == 1
    loaded = MemoryBM25.load(saved[0])
    assert loaded is not None and len(loaded) == len(index)
    index.close()

    s = Settings.load(index_dir=tmp_path / "index", bm25="fts5")  # FTS5 needs no such file
    (tmp_path / "other").mkdir()
    Index.build([docs], tmp_path / "other", settings=s, embedder=FakeEmbedder()).close()
    assert not list((tmp_path / "other").rglob("*-bm25.npz"))
