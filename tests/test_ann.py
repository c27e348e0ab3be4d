"""Approximate vector search: IVF and HNSW structures, their updates and removals, source
filters, the memory-saving codes re-ranked exactly, and a changed factory on rebuild."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from fakes import FakeEmbedder

from qa import Index
from qa.config import Settings
from qa.errors import BadInput
from qa.index import vectors as vmod
from qa.index.vectors import VectorIndex, plan, should_reshape

DIM = 32
# PQ is left out: training its 256-code parts took minutes on this shared machine
SPECS = ["Flat", "HNSW16", "HNSW16,SQ8", "IVF8,Flat", "IVF8,SQ8"]


def clustered(n: int, seed: int = 0, clusters: int = 24) -> np.ndarray:
    """Unit vectors around random centres (ANN structures need some structure to find)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, DIM))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class Stored:
    """The exact vectors by id, as the SQLite store serves them for re-ranking."""

    def __init__(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        self.rows = dict(zip(ids.tolist(), vecs, strict=True))

    def __call__(self, ids):
        got = sorted(int(i) for i in ids if int(i) in self.rows)
        if not got:
            return np.zeros(0, np.int64), np.zeros((0, DIM), np.float32)
        return np.asarray(got, np.int64), np.vstack([self.rows[i] for i in got])


def exact_top(vecs, ids, q, n, allowed=None):
    keep = np.ones(len(ids), bool) if allowed is None else np.isin(ids, allowed)
    scores = vecs[keep] @ q
    order = np.argsort(-scores, kind="stable")[:n]
    return ids[keep][order].tolist()


def make(spec: str, n: int = 2000, seed: int = 0):
    vecs = clustered(n, seed)
    ids = np.arange(1000, 1000 + n, dtype=np.int64)  # ids are not positions
    index = VectorIndex(DIM, spec, size=n)
    assert index.spec == spec
    if index.needs_training():
        index.train(vecs)
    index.add(ids, vecs)
    index.fetch = Stored(ids, vecs)
    return index, ids, vecs


def recall(index, ids, vecs, queries, n=10, allowed=None) -> float:
    hit = 0
    for q in queries:
        got = [i for i, _ in index.search(q, n, allowed)]
        want = exact_top(vecs, ids, q, n, allowed)
        hit += len(set(got) & set(want))
    return hit / (n * len(queries))


@pytest.mark.parametrize("spec", SPECS)
def test_search_finds_the_exact_neighbours(spec):
    index, ids, vecs = make(spec)
    queries = clustered(20, seed=7)
    r = recall(index, ids, vecs, queries)
    # PQ8 on 32-d keeps 8 bytes a vector: the coarsest code, its candidates miss more
    assert r == 1.0 if spec == "Flat" else r >= (0.75 if "PQ" in spec else 0.9), (spec, r)
    if index.lossy:  # re-ranked from the exact vectors: the scores are exact inner products
        (top, score), *_ = index.search(queries[0], 5)
        assert score == pytest.approx(float(vecs[ids == top][0] @ queries[0]), abs=1e-5)


@pytest.mark.parametrize("spec", SPECS)
def test_removed_ids_are_never_returned_and_added_ones_are(spec):
    index, ids, vecs = make(spec)
    q = vecs[5]
    first = [i for i, _ in index.search(q, 10)]
    assert first[0] == ids[5]
    index.remove(first[:5])
    after = [i for i, _ in index.search(q, 10)]
    assert not set(after) & set(first[:5])
    assert index.ntotal == len(ids) - 5
    assert set(index.ids().tolist()) == set(ids.tolist()) - set(first[:5])
    if spec.startswith("HNSW"):  # a graph cannot drop nodes: tombstones until compacted
        assert index.deleted_share == pytest.approx(5 / len(ids))
    new_ids = np.asarray([99_001, 99_002], np.int64)
    index.add(new_ids, vecs[[5, 6]])
    index.fetch.rows.update({99_001: vecs[5], 99_002: vecs[6]})
    assert index.search(q, 1)[0][0] == 99_001


@pytest.mark.parametrize("spec", SPECS)
def test_source_filter_returns_only_allowed_ids(spec):
    index, ids, vecs = make(spec)
    q = clustered(1, seed=3)[0]
    small = ids[::97]  # a few chunks: searched exactly over their stored vectors
    got = [i for i, _ in index.search(q, 5, small)]
    assert got == exact_top(vecs, ids, q, 5, small)
    index.fetch = None  # without stored vectors the FAISS structure filters by itself
    got = [i for i, _ in index.search(q, 5, ids[::2])]
    assert got and set(got) <= set(ids[::2].tolist())
    assert index.search(q, 5, np.zeros(0, np.int64)) == []


@pytest.mark.parametrize("spec", SPECS)
def test_save_and_load_keep_the_structure_and_the_results(spec, tmp_path):
    index, ids, vecs = make(spec)
    q = vecs[11]
    index.remove(ids[:3])
    path = tmp_path / "v.faiss"
    index.save(path)
    loaded = VectorIndex.load(path, spec)
    assert loaded.spec == spec
    extra = loaded.adopt_tombstones(np.sort(ids[3:]))
    if spec.startswith("HNSW"):
        assert sorted(extra.tolist()) == ids[:3].tolist() and loaded.ntotal == len(ids) - 3
    else:
        assert len(extra) == 0
    loaded.fetch = index.fetch
    assert loaded.search(q, 10) == index.search(q, 10)


def test_plan_chooses_by_size_and_keeps_structures_near_a_threshold():
    assert plan("auto", 10) == "Flat"
    assert plan("auto", vmod.ANN_MIN - 1) == "Flat"
    assert plan("auto", 1_000_000) == "IVF2048,Flat"
    assert plan("auto", vmod.SQ8_MIN).endswith(",SQ8")
    assert plan("IVF,SQ8", 1_000_000) == "IVF2048,SQ8"
    assert plan("IVF64,Flat", 100) == "Flat"  # too few to train: exact until there are
    assert plan("IVF64,Flat", 64 * vmod.TRAIN_PER_LIST) == "IVF64,Flat"
    assert plan("HNSW32,Flat", 5) == "HNSW32"
    assert not should_reshape("IVF2048,Flat", "IVF4096,Flat", 2_000_000)
    assert should_reshape("IVF512,Flat", "IVF2048,Flat", 1_000_000)
    assert should_reshape("IVF512,Flat", "IVF512,SQ8", 1_000_000)
    assert not should_reshape("IVF512,Flat", "Flat", vmod.ANN_MIN - 1)
    assert should_reshape("IVF512,Flat", "Flat", vmod.ANN_MIN // 4)
    assert should_reshape("Flat", "HNSW32", 10)


@pytest.mark.parametrize(
    "value", ["bogus", "HNSW", "HNSW2", "IVF0,Flat", "IVF,PQ", "Flat,SQ8", "LSH"]
)
def test_bad_factory_is_one_line_error(value, monkeypatch):
    monkeypatch.setenv("QA_FAISS_FACTORY", value)
    with pytest.raises(BadInput, match="QA_FAISS_FACTORY") as err:
        Settings.load()
    assert "\n" not in str(err.value)


def test_pq_parts_must_divide_the_dimension():
    with pytest.raises(BadInput, match="divides the vector size 32"):
        VectorIndex(DIM, "IVF4,PQ5", size=10_000)


# --- through the Index ----------------------------------------------------------------


WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()


def many_docs(folder, n_docs: int = 30, paragraphs: int = 8):
    """Files whose paragraphs are distinct word mixes: about n_docs * paragraphs chunks."""
    rng = np.random.default_rng(1)
    folder.mkdir(exist_ok=True)
    for d in range(n_docs):
        text = "\n\n".join(
            " ".join(rng.choice(WORDS, 40)) + f" doc{d} para{p}." for p in range(paragraphs)
        )
        (folder / f"d{d:02d}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def emb():
    return FakeEmbedder(dimension=DIM)


def open_with(settings, factory, emb, docs=None, **kw):
    s = settings.with_(faiss_factory=factory)
    if docs is None:
        return Index.open(s.index_dir, settings=s, embedder=emb)
    return Index.build([docs], s.index_dir, settings=s, embedder=emb, **kw)


def count_rebuilds(monkeypatch):
    calls = []
    real = Index._rebuild_vectors

    def spy(self, factory, batches=None):
        calls.append(factory)
        return real(self, factory, batches)

    monkeypatch.setattr(Index, "_rebuild_vectors", spy)
    return calls


def chunk_ids_of(index, source):
    return set(index.store.chunk_ids_for_sources([source]))


def top_source(index, source):
    """The source of the best dense hit for the text of one of `source`'s chunks."""
    cid = min(chunk_ids_of(index, source))
    text = index.store.chunks([cid])[cid].text
    return index.search(text, k=1, mode="dense")[0].source


@pytest.mark.parametrize("factory", ["HNSW16", "IVF4,Flat", "IVF4,SQ8"])
def test_index_updates_and_removals_in_place(factory, tmp_path, settings, emb, monkeypatch):
    docs = many_docs(tmp_path / "docs")
    index = open_with(settings, factory, emb, docs)
    vectors = index._current_vectors()
    assert vectors.spec == factory and vectors.ntotal == len(index)
    rebuilds = count_rebuilds(monkeypatch)

    old = chunk_ids_of(index, "docs/d03.txt")
    (docs / "d03.txt").write_text("kilo lima zulu changed words entirely.", encoding="utf-8")
    (docs / "d04.txt").unlink()
    report = index.sync([docs])
    assert report.updated == ("docs/d03.txt",) and report.removed == ("docs/d04.txt",)
    assert rebuilds == []  # updated in place, not rebuilt
    vectors = index._current_vectors()
    assert set(vectors.ids().tolist()) == set(index.store.vector_ids().tolist())
    hits = index.search("kilo lima zulu changed words entirely", k=3, mode="dense")
    assert hits[0].source == "docs/d03.txt"
    returned = {h.chunk_id for h in index.search("alpha bravo doc3", k=50, mode="dense")}
    assert not returned & old
    assert not any(h.source == "docs/d04.txt" for h in index.search("doc4 para1", k=50))

    index.remove("docs/d05.txt")
    assert rebuilds == []
    assert not any(h.source == "docs/d05.txt" for h in index.search("doc5 para2", k=50))
    index.close()

    # reopened from its file (no rebuild), HNSW with the removed ids as tombstones
    again = open_with(settings, factory, emb)
    assert again._current_vectors().spec == factory
    assert rebuilds == []
    assert set(again._current_vectors().ids().tolist()) == set(again.store.vector_ids().tolist())
    assert not any(h.source == "docs/d05.txt" for h in again.search("doc5 para2", k=50))
    again.close()


@pytest.mark.parametrize("factory", ["Flat", "HNSW16", "IVF4,Flat", "IVF4,SQ8"])
def test_source_filter_through_the_index(factory, tmp_path, settings, emb):
    docs = many_docs(tmp_path / "docs")
    index = open_with(settings, factory, emb, docs)
    wanted = ["docs/d07.txt", "docs/d21.txt"]
    for mode in ("dense", "hybrid"):
        hits = index.search("alpha bravo charlie", k=10, sources=wanted, mode=mode)
        assert hits and {h.source for h in hits} <= set(wanted), mode
    exact = open_with(settings.with_(index_dir=tmp_path / "flat"), "Flat", emb, docs)
    q = "golf hotel doc21 para3"
    got = [h.text for h in index.search(q, k=5, sources=wanted, mode="dense")]
    assert got == [h.text for h in exact.search(q, k=5, sources=wanted, mode="dense")]
    index.close()
    exact.close()


def test_hnsw_is_compacted_after_many_removals(tmp_path, settings, emb, monkeypatch):
    docs = many_docs(tmp_path / "docs")
    index = open_with(settings, "HNSW16", emb, docs)
    total = len(index)
    for d in range(7):  # 7 of 30 documents: under COMPACT_SHARE (25%)
        (docs / f"d{d:02d}.txt").unlink()
    index.sync([docs])
    assert 0.2 < index._current_vectors().deleted_share <= vmod.COMPACT_SHARE
    (docs / "d07.txt").unlink()
    (docs / "d08.txt").unlink()  # now over it: the next save rebuilds the graph
    index.sync([docs])
    vectors = index._current_vectors()
    assert vectors.deleted_share == 0 and vectors.spec == "HNSW16"
    assert vectors.ntotal == len(index) < total
    assert set(vectors.ids().tolist()) == set(index.store.vector_ids().tolist())
    assert top_source(index, "docs/d12.txt") == "docs/d12.txt"
    index.close()


def test_auto_turns_approximate_above_the_threshold(tmp_path, settings, emb, monkeypatch):
    monkeypatch.setattr(vmod, "ANN_MIN", 100)
    docs = many_docs(tmp_path / "docs", n_docs=8)
    index = open_with(settings, "auto", emb, docs)
    assert len(index) < 100 and index._current_vectors().spec == "Flat"
    many_docs(docs, n_docs=30)
    index.add([docs])
    vectors = index._current_vectors()
    assert len(index) >= 100 and vectors.spec.startswith("IVF"), vectors.spec
    assert vectors.ntotal == len(index)
    assert top_source(index, "docs/d25.txt") == "docs/d25.txt"
    index.close()
    reopened = open_with(settings, "auto", emb)
    assert reopened._current_vectors().spec == vectors.spec  # saved as built
    reopened.close()


def test_changed_factory_takes_effect_on_rebuild_with_a_notice_before(
    tmp_path, settings, emb, caplog
):
    docs = many_docs(tmp_path / "docs", n_docs=6)
    open_with(settings, "Flat", emb, docs).close()
    with caplog.at_level(logging.WARNING, logger="qa.index.core"):
        index = open_with(settings, "HNSW16", emb)
        assert index._current_vectors().spec == "Flat"  # the manifest's until a rebuild
        index.search("alpha", k=1)
        index.close()
    notices = [r.getMessage() for r in caplog.records if "QA_FAISS_FACTORY" in r.getMessage()]
    assert len(notices) == 1 and "--rebuild" in notices[0] and "\n" not in notices[0]

    rebuilt = open_with(settings, "HNSW16", emb, docs, rebuild=True)
    assert rebuilt.manifest["faiss_factory"] == "HNSW16"
    assert rebuilt._current_vectors().spec == "HNSW16"
    assert top_source(rebuilt, "docs/d02.txt") == "docs/d02.txt"
    rebuilt.close()


def test_cli_says_a_changed_factory_waits_for_a_rebuild(tmp_path, caplog, monkeypatch, emb):
    from qa import cli

    monkeypatch.setattr("qa.index.core.get_embedder", lambda *a, **k: emb)
    docs = many_docs(tmp_path / "docs", n_docs=6)
    ix = tmp_path / "ix"
    assert cli.main(["index", str(docs), "--index", str(ix)]) == 0
    monkeypatch.setenv("QA_FAISS_FACTORY", "HNSW16")
    with caplog.at_level(logging.WARNING, logger="qa.index.core"):
        assert cli.main(["index", str(docs), "--index", str(ix)]) == 0
    assert "QA_FAISS_FACTORY=HNSW16 is not used" in caplog.text
    assert "qa index --rebuild" in caplog.text


def test_search_breadth_is_settable_and_full_breadth_is_exact():
    index, ids, vecs = make("IVF8,Flat")
    queries = clustered(10, seed=5)
    assert index.nprobe == vmod.nprobe_for(8) == min(8, vmod.NPROBE_MIN)
    index.nprobe = 1
    narrow = recall(index, ids, vecs, queries)
    index.nprobe = 8  # every list: exact
    assert recall(index, ids, vecs, queries) == 1.0 >= narrow
    allowed = ids[::3]
    assert recall(index, ids, vecs, queries, allowed=allowed) == 1.0
    ivf = index
    hnsw, ids, vecs = make("HNSW16")
    hnsw.ef_search = 512
    assert recall(hnsw, ids, vecs, queries) >= 0.99
    assert vmod.nprobe_for(2048) == 128 and vmod.nprobe_for(64) == vmod.NPROBE_MIN
    # 1/16 of the lists, but at least SCAN_MIN vectors scanned
    assert vmod.nprobe_for(2048, 1_000_000) == 128
    assert vmod.nprobe_for(512, 100_000) == 512 * vmod.SCAN_MIN // 100_000
    ivf.nprobe = None  # back to the size's
    assert ivf.nprobe == 8
