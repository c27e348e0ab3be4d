"""The index's lifecycle: rebuilding without losing anything, readers that follow rebuilds and
other writers, skipping unchanged files without reading them, and score fusion."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from fakes import FakeEmbedder

from qa import Index
from qa.errors import BadInput, IndexMismatch
from qa.index import manifest as mf
from qa.index.core import Index as CoreIndex
from qa.index.fusion import RRF_K, fuse
from qa.index.rebuild import rebuild, stored_roots


def build(paths, settings, embedder):
    return Index.build(paths, settings.index_dir, settings=settings, embedder=embedder)


def sources(index) -> list[str]:
    return [d.source for d in index.documents()]


# --- rebuilding ---------------------------------------------------------------------------


def test_cli_rebuild_without_path_rebuilds_what_the_index_was_built_from(
    tmp_path, docs, monkeypatch, capsys
):
    """Regression: `qa index DIR --index X` then `qa index --rebuild --index X` put corpus/
    into X, because the rebuild cleared the index before reading its roots."""
    from qa import cli

    monkeypatch.setattr("qa.index.core.get_embedder", lambda *a, **k: FakeEmbedder())
    monkeypatch.chdir(tmp_path)
    x = tmp_path / "X"
    assert cli.main(["index", str(docs), "--index", str(x)]) == 0
    before = capsys.readouterr().out
    assert cli.main(["index", "--rebuild", "--index", str(x)]) == 0
    after = capsys.readouterr().out
    index = Index.open(x, embedder=FakeEmbedder())
    assert sources(index) == ["docs/cats.txt", "docs/rivers.md", "docs/sub/volcano.txt"]
    assert "corpus" not in after and "3 documents" in before and "3 documents" in after


def test_rebuild_switches_a_reader_to_the_new_database_and_deletes_the_old(
    docs, settings, fake_embedder
):
    reader = build([docs], settings, fake_embedder)
    old_db = reader.status().database
    (docs / "penguins.txt").write_text("Penguins live in Antarctica.", "utf-8")
    report = rebuild(settings.index_dir, settings=settings, embedder=FakeEmbedder())
    assert "docs/penguins.txt" in report.added
    # the reader (as another process would) sees the new index on its next read
    assert reader.search("penguins Antarctica", k=1, mode="bm25")[0].source == "docs/penguins.txt"
    new_db = reader.status().database
    assert new_db != old_db and not (settings.index_dir / old_db).exists()
    files = sorted(
        p.name
        for p in settings.index_dir.iterdir()
        if not p.name.startswith(".") and not p.name.endswith(("-wal", "-shm"))  # open by reader
    )
    db_id = json.loads((settings.index_dir / "manifest.json").read_text())["id"]
    assert files == [f"index-{db_id}.sqlite", "manifest.json", f"vectors-{db_id}-2.faiss"], files


def test_a_failed_rebuild_leaves_the_old_index_serving(docs, settings, fake_embedder):
    index = build([docs], settings, fake_embedder)
    expected = [h.chunk_id for h in index.search("Danube countries", k=3)]

    class Failing(FakeEmbedder):
        def embed(self, texts):
            raise RuntimeError("the disk is on fire")

    with pytest.raises(RuntimeError, match="on fire"):
        rebuild(settings.index_dir, settings=settings, embedder=Failing())
    assert [h.chunk_id for h in index.search("Danube countries", k=3)] == expected
    assert not (settings.index_dir / ".rebuild").exists()
    again = Index.open(settings.index_dir, settings=settings, embedder=fake_embedder)
    assert sources(again) == sources(index)


def test_rebuild_with_roots_that_are_gone_says_so_and_changes_nothing(
    tmp_path, docs, settings, fake_embedder
):
    index = build([docs], settings, fake_embedder)
    (tmp_path / "docs").rename(tmp_path / "moved")
    with pytest.raises(BadInput, match="no longer exists.*qa index --rebuild"):
        rebuild(settings.index_dir, settings=settings, embedder=fake_embedder)
    assert len(sources(index)) == 3


def test_an_index_of_the_old_format_names_the_rebuild_and_rebuilds_from_its_roots(
    docs, settings, fake_embedder
):
    """Format 1 kept index.sqlite; its roots are still read for a rebuild without PATH."""
    build([docs], settings, fake_embedder).close()
    d = settings.index_dir
    manifest = json.loads((d / "manifest.json").read_text())
    os.replace(d / manifest["database"], d / "index.sqlite")
    manifest["format_version"] = 1
    del manifest["database"], manifest["id"]
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        IndexMismatch, match=r"format 1, this qa reads format 2.*qa index --rebuild"
    ):
        Index.open(d, settings=settings, embedder=fake_embedder)
    assert [p.name for p in stored_roots(d)] == ["docs"]
    rebuild(d, settings=settings, embedder=fake_embedder)
    index = Index.open(d, settings=settings, embedder=fake_embedder)
    assert len(sources(index)) == 3 and not (d / "index.sqlite").exists()


# --- readers follow other writers ----------------------------------------------------------


def test_a_reader_catches_up_with_another_writers_commits_without_rebuilding_faiss(
    docs, settings, fake_embedder, monkeypatch
):
    reader = build([docs], settings, fake_embedder)
    reader.search("Nile", k=1)  # FAISS loaded
    rebuilt = []
    original = CoreIndex._rebuild_vectors
    monkeypatch.setattr(
        CoreIndex, "_rebuild_vectors", lambda self, f: rebuilt.append(1) or original(self, f)
    )
    writer = Index.open(settings.index_dir, settings=settings, embedder=FakeEmbedder())
    (docs / "penguins.txt").write_text("Penguins live in Antarctica.", "utf-8")
    writer.add([docs / "penguins.txt"])
    (docs / "cats.txt").unlink()
    writer.sync([docs])
    hits = reader.search("penguins Antarctica", k=1, mode="dense")
    assert hits[0].source == "docs/penguins.txt"
    assert all(h.source != "docs/cats.txt" for h in reader.search("cats purr", k=10))
    assert rebuilt == []  # caught up from the changed ids, not rebuilt from every vector
    status = reader.status()
    assert status.vectors == status.chunks


def test_a_search_completes_while_a_write_is_embedding(docs, settings):
    """Embedding, the slow part of a write, runs outside the index's lock: a search made
    while a write is stopped inside `embed` returns (it would wait forever otherwise)."""
    import threading

    entered, release = threading.Event(), threading.Event()

    class Gated(FakeEmbedder):
        def embed(self, texts):
            if threading.current_thread().name == "writer" and not release.is_set():
                entered.set()
                release.wait(60)
            return super().embed(texts)

    index = Index.build([docs], settings.index_dir, settings=settings, embedder=FakeEmbedder())
    index.embedder = Gated()
    (docs / "more.txt").write_text("Penguins live in Antarctica. They cannot fly.", "utf-8")
    writer = threading.Thread(target=index.add, args=([docs],), name="writer")
    writer.start()
    try:
        assert entered.wait(30)
        assert index.search("Nile", k=1)[0].source == "docs/rivers.md"
        assert index._writing.locked()  # the write was still in progress
    finally:
        release.set()
        writer.join(60)
    assert "docs/more.txt" in sources(index)


# --- skipping unchanged files ---------------------------------------------------------------


def test_unchanged_files_are_not_read_again(docs, settings, fake_embedder, monkeypatch):
    index = build([docs], settings, fake_embedder)
    reads = []
    original = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.name) or original(self))
    report = index.sync([docs])
    assert len(report.unchanged) == 3 and reads == []
    # touched but not changed: read and hashed once, not embedded, then skipped again
    os.utime(docs / "cats.txt", (1_000_000_000, 1_000_000_000))
    fake_embedder.calls.clear()
    report = index.sync([docs])
    assert reads == ["cats.txt"] and report.chunks_embedded == 0 and fake_embedder.calls == []
    index.sync([docs])
    assert reads == ["cats.txt"]
    # a changed file is noticed
    (docs / "cats.txt").write_text("Cats are small lions.", "utf-8")
    assert index.sync([docs]).updated == ("docs/cats.txt",)


def test_generation_and_vectors_file_agree_after_indexing(docs, settings, fake_embedder):
    """A new process opens the FAISS file as saved (no rebuild) right after `qa index`."""
    build([docs], settings, fake_embedder).close()
    d = settings.index_dir
    manifest = json.loads((d / "manifest.json").read_text())
    conn = sqlite3.connect(d / manifest["database"])
    (generation,) = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
    conn.close()
    assert (d / mf.vectors_name(manifest["id"], int(generation))).is_file()


# --- fusion ----------------------------------------------------------------------------------


def test_rrf_adds_reciprocal_ranks():
    fused = fuse({"dense": [(1, 0.9), (2, 0.8)], "bm25": [(2, 7.0), (3, 5.0)]}, "rrf")
    scores = {cid: s for cid, s, _ in fused}
    assert scores[2] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert scores[1] == pytest.approx(1 / (RRF_K + 1))
    assert [cid for cid, _, _ in fused] == [2, 1, 3]
    assert dict((cid, by) for cid, _, by in fused)[2] == ("dense", "bm25")


def test_weighted_fusion_blends_z_scores_and_floors_missing_ones():
    dense = [(1, 0.9), (2, 0.5), (3, 0.1)]
    bm25 = [(3, 10.0), (4, 2.0)]
    fused = fuse({"dense": dense, "bm25": bm25}, "weighted", dense_weight=0.5)
    scores = {cid: s for cid, s, _ in fused}
    # dense z: mean .5, std .3266; bm25 z: mean 6, std 4 -> 3 is +1, 4 is -1 (= bm25's floor)
    zd = {1: 1.2247, 2: 0.0, 3: -1.2247}
    assert scores[3] == pytest.approx(0.5 * zd[3] + 0.5 * 1.0, abs=1e-3)
    assert scores[1] == pytest.approx(0.5 * zd[1] + 0.5 * -1.0, abs=1e-3)
    assert scores[4] == pytest.approx(0.5 * zd[3] + 0.5 * -1.0, abs=1e-3)  # dense floor
    assert [cid for cid, _, _ in fused] == sorted(scores, key=lambda c: (-scores[c], c))
    # dense weight 1: BM25 no longer matters
    only_dense = fuse({"dense": dense, "bm25": bm25}, "weighted", dense_weight=1.0)
    assert [cid for cid, _, _ in only_dense][:2] == [1, 2]


def test_one_list_is_returned_as_it_is_and_ties_break_by_id():
    assert fuse({"bm25": [(5, 1.0), (4, 1.0)]}) == [(5, 1.0, ("bm25",)), (4, 1.0, ("bm25",))]
    tied = fuse({"dense": [(9, 1.0), (8, 1.0)], "bm25": [(8, 1.0), (9, 1.0)]}, "rrf")
    assert [cid for cid, _, _ in tied] == [8, 9]
    with pytest.raises(ValueError):
        fuse({"dense": []}, "magic")


def test_a_damaged_faiss_file_is_logged_when_it_is_rebuilt(docs, settings, fake_embedder, caplog):
    """Regression: a failed FAISS load silently triggered a rebuild from every vector."""
    build([docs], settings, fake_embedder).close()
    (path,) = settings.index_dir.glob("vectors-*.faiss")
    path.write_bytes(b"not a faiss file")
    with caplog.at_level("WARNING", logger="qa.index.core"):
        index = Index.open(settings.index_dir, settings=settings, embedder=fake_embedder)
        assert index.search("Nile", k=1)[0].source == "docs/rivers.md"
    (record,) = [r for r in caplog.records if path.name in r.getMessage()]
    assert "cannot load" in record.getMessage() and "rebuilding" in record.getMessage()
