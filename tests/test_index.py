"""The index: build, incremental updates, removal, manifest checks, locking, search."""

from __future__ import annotations

import json
import multiprocessing
import os
import re

import numpy as np
import pytest
from fakes import FakeEmbedder

from qa import Index
from qa.errors import BadInput, IndexLocked, IndexMismatch, IndexNotFound
from qa.index.lock import FileLock as _FileLock


def build(docs, settings, embedder, **kw):
    return Index.build([docs], settings.index_dir, settings=settings, embedder=embedder, **kw)


def consistent(index: Index) -> None:
    """SQLite chunk ids == FAISS ids, and every chunk slices its document's text."""
    sql_ids = {cid for ids, _ in index.store.iter_vectors() for cid in ids.tolist()}
    chunk_ids = {r[0] for r in index.store.conn.execute("SELECT id FROM chunks")}
    assert sql_ids == chunk_ids
    vectors = index._current_vectors()
    assert vectors.ntotal == len(chunk_ids)
    assert set(vectors.ids().tolist()) == chunk_ids
    for row in index.store.chunks(sorted(chunk_ids)).values():
        assert index.document_text(row.source)[row.start : row.end] == row.text


def test_build_and_search(docs, settings, fake_embedder):
    index = build(docs, settings, fake_embedder)
    sources = [d.source for d in index.documents()]
    assert sources == ["docs/cats.txt", "docs/rivers.md", "docs/sub/volcano.txt"]
    hits = index.search("Which river is the longest in Africa?", k=3)
    assert hits[0].source == "docs/rivers.md" and "Nile" in hits[0].text
    assert hits[0].headings == ("Rivers",)
    text = index.document_text(hits[0].source)
    assert text[hits[0].start : hits[0].end] == hits[0].text
    assert set(hits[0].retrievers) <= {"dense", "bm25"} and hits[0].retrievers
    consistent(index)


def test_search_modes_filters_and_bad_queries(docs, settings, fake_embedder):
    index = build(docs, settings, fake_embedder)
    for mode in ("dense", "bm25", "hybrid"):
        hits = index.search("volcano Sicily", k=2, mode=mode)
        assert hits[0].source == "docs/sub/volcano.txt", mode
    only = index.search("volcano Sicily", k=5, sources=["docs/cats.txt"])
    assert only and {h.source for h in only} == {"docs/cats.txt"}
    # a query of only stopwords still searches them rather than returning nothing
    stop = index.search("the", k=3, mode="bm25")
    assert stop and all(re.search(r"\bthe\b", h.text, re.I) for h in stop)
    assert index.search("zyxwvut", k=3, mode="bm25") == []
    assert index.search('"quotes" AND (NEAR*) OR -', k=3)  # FTS5 syntax is not interpreted
    with pytest.raises(BadInput):
        index.search("   ")
    with pytest.raises(BadInput):
        index.search("x", mode="magic")


def test_incremental_add_change_delete(docs, settings):
    emb = FakeEmbedder()
    index = build(docs, settings, emb)
    ids_before = {d.source: d.sha256 for d in index.documents()}

    report = index.sync([docs])
    assert sorted(report.unchanged) == sorted(ids_before)
    assert report.chunks_embedded == 0 and not report.added and not report.removed

    (docs / "cats.txt").write_text("Cats are now about lions. Lions roar loudly.", "utf-8")
    (docs / "new.txt").write_text("Penguins live in Antarctica.", "utf-8")
    (docs / "sub" / "volcano.txt").unlink()
    emb.calls.clear()
    report = index.sync([docs])
    assert report.updated == ("docs/cats.txt",)
    assert report.added == ("docs/new.txt",)
    assert report.removed == ("docs/sub/volcano.txt",)
    assert report.unchanged == ("docs/rivers.md",)
    assert sum(emb.calls) == report.chunks_embedded  # only the changed files were embedded
    assert index.search("lions roar", k=1)[0].source == "docs/cats.txt"
    assert all(h.source != "docs/sub/volcano.txt" for h in index.search("volcano", k=10))
    consistent(index)
    assert [d.source for d in index.documents()] == [
        "docs/cats.txt",
        "docs/new.txt",
        "docs/rivers.md",
    ]
    assert len(index) == sum(d.chunks for d in index.documents())

    # reopening sees the same state, and a rerun changes nothing
    index.close()
    again = Index.open(settings.index_dir, settings=settings, embedder=emb)
    assert again.sync([docs]).chunks_embedded == 0
    consistent(again)


def test_add_does_not_remove_and_rebuild_starts_over(docs, settings, fake_embedder, tmp_path):
    index = build(docs, settings, fake_embedder)
    other = tmp_path / "other.txt"
    other.write_text("Kangaroos hop across Australia.", "utf-8")
    (docs / "cats.txt").unlink()
    report = index.add([other])
    assert report.added == ("other.txt",) and not report.removed
    assert "docs/cats.txt" in {d.source for d in index.documents()}  # add never removes
    index.close()
    rebuilt = build(docs, settings, fake_embedder, rebuild=True)
    assert {d.source for d in rebuilt.documents()} == {"docs/rivers.md", "docs/sub/volcano.txt"}
    consistent(rebuilt)


def test_reindexing_the_same_file_twice_does_not_duplicate(docs, settings, fake_embedder):
    index = build(docs, settings, fake_embedder)
    n = len(index)
    index.add([docs / "cats.txt"])
    index.add([docs])
    assert len(index) == n
    assert len(index.documents()) == 3


def test_remove_document_and_folder(docs, settings, fake_embedder):
    index = build(docs, settings, fake_embedder)
    assert index.remove("docs/cats.txt") == ["docs/cats.txt"]
    assert index.remove(docs / "sub") == ["docs/sub/volcano.txt"]
    assert [d.source for d in index.documents()] == ["docs/rivers.md"]
    with pytest.raises(BadInput, match="not in the index"):
        index.remove("docs/cats.txt")
    consistent(index)


def test_unsupported_and_unreadable_files_are_skipped_with_reasons(docs, settings, fake_embedder):
    (docs / "archive.7z").write_bytes(b"7z\xbc\xaf\x27\x1c" + bytes(100))
    (docs / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))  # PNG is OCRed now
    (docs / "fake.pdf").write_bytes(b"this is not a pdf")
    index = Index.open(settings.index_dir, settings=settings, embedder=fake_embedder, create=True)
    report = index.sync([docs])
    reasons = {s.source: s.reason for s in report.skipped}
    failed = {s.source: s.failed for s in report.skipped}
    assert "unsupported" in reasons["docs/archive.7z"] and not failed["docs/archive.7z"]
    assert reasons["docs/photo.png"].startswith("corrupt or unreadable PNG image")
    assert "0x" not in reasons["docs/photo.png"]  # no object address in the reason
    assert failed["docs/photo.png"]
    assert "docs/fake.pdf" in reasons
    assert len(report.added) == 3


def test_missing_index_and_paths(settings, fake_embedder, tmp_path):
    with pytest.raises(IndexNotFound, match="qa index"):
        Index.open(tmp_path / "nowhere", settings=settings, embedder=fake_embedder)
    index = Index.open(settings.index_dir, settings=settings, embedder=fake_embedder, create=True)
    with pytest.raises(BadInput, match="no such file"):
        index.add([tmp_path / "missing"])


def test_manifest_mismatch_says_how_to_rebuild(docs, settings, fake_embedder):
    build(docs, settings, fake_embedder).close()
    with pytest.raises(IndexMismatch, match="rebuild"):
        Index.open(settings.index_dir, settings=settings, embedder=FakeEmbedder(name="other"))
    with pytest.raises(IndexMismatch, match="32-d"):
        Index.open(settings.index_dir, settings=settings, embedder=FakeEmbedder(dimension=32))
    manifest = settings.index_dir / "manifest.json"
    data = json.loads(manifest.read_text())
    data["format_version"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(IndexMismatch, match="format 99.*--rebuild"):
        Index.open(settings.index_dir, settings=settings, embedder=fake_embedder)


def test_the_backend_is_recorded_and_an_embedder_naming_another_is_refused(docs, settings):
    class OnBackend(FakeEmbedder):
        def __init__(self, backend):
            super().__init__()
            self.backend = backend

    build(docs, settings, OnBackend("onnx")).close()
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert manifest["embedder"]["backend"] == "onnx"
    Index.open(settings.index_dir, settings=settings, embedder=OnBackend("onnx")).close()
    with pytest.raises(IndexMismatch, match="built with the 'onnx' embedder backend, not 'torch'"):
        Index.open(settings.index_dir, settings=settings, embedder=OnBackend("torch"))
    # an embedder given explicitly that names no backend (a custom one) is taken at its word
    Index.open(settings.index_dir, settings=settings, embedder=FakeEmbedder()).close()


def test_chunking_settings_come_from_the_manifest(docs, settings, fake_embedder):
    build(docs, settings, fake_embedder).close()
    other = settings.with_(chunk_tokens=200, chunk_overlap=0)
    index = Index.open(settings.index_dir, settings=other, embedder=fake_embedder)
    assert index.manifest["chunking"] == {"chunk_tokens": 48, "overlap": 8}


def test_stale_or_missing_faiss_file_is_rebuilt_from_sqlite(docs, settings, fake_embedder):
    index = build(docs, settings, fake_embedder)
    expected = [h.chunk_id for h in index.search("Danube countries", k=3, mode="dense")]
    index.close()
    for f in settings.index_dir.glob("vectors-*.faiss"):
        f.unlink()
    again = Index.open(settings.index_dir, settings=settings, embedder=fake_embedder)
    assert [h.chunk_id for h in again.search("Danube countries", k=3, mode="dense")] == expected
    consistent(again)


def _hold_lock(path, ready, release):
    with _FileLock(path):
        ready.set()
        release.wait(30)


def test_a_second_writer_fails_fast_and_readers_are_not_blocked(docs, settings, fake_embedder):
    index = build(docs, settings, fake_embedder)
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(settings.index_dir / ".lock", ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(IndexLocked, match=f"pid {holder.pid}"):
            index.add([docs])  # at once: the lock is taken without waiting
        assert index.search("Nile", k=1)  # reading still works
    finally:
        release.set()
        holder.join(10)
    index.add([docs])  # lock released: writing works again


def test_search_sees_writes_from_another_process(docs, settings, fake_embedder, tmp_path):
    reader = build(docs, settings, fake_embedder)
    assert not reader.search("penguins Antarctica", k=5, mode="bm25")
    new = docs / "penguins.txt"
    new.write_text("Penguins live in Antarctica.", "utf-8")
    pid = os.fork()
    if pid == 0:  # a separate writer process
        try:
            w = Index.open(settings.index_dir, settings=settings, embedder=FakeEmbedder())
            w.add([new])
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    hits = reader.search("penguins Antarctica", k=1, mode="dense")
    assert hits and hits[0].source == "docs/penguins.txt"
    consistent(reader)


def test_each_chunk_is_stored_with_the_vector_of_its_own_text(docs, settings, fake_embedder):
    index = build(docs, settings, fake_embedder)
    for ids, vecs in index.store.iter_vectors():
        rows = index.store.chunks(ids.tolist())
        expected = fake_embedder.embed([rows[int(i)].text for i in ids])
        assert np.allclose(vecs, expected, atol=1e-6)


@pytest.mark.slow
def test_the_real_embedder_stores_unit_vectors(docs, settings):
    index = Index.build([docs], settings.index_dir, settings=settings)
    for _, vecs in index.store.iter_vectors():
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
