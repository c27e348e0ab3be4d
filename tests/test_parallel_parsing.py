"""Parsing in worker processes: the same index, report and per-file errors as in-process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa import Index
from qa.ingest import parallel
from qa.ingest.parallel import Job, Loads, read_and_load

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def mixed(tmp_path) -> Path:
    """HTML, PDF and DOCX files (several of each), plain text, and two broken files."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(3):
        for name in ("sample.html", "sample.pdf", "sample.docx", "sample.txt", "sample.md"):
            stem, suffix = name.split(".")
            shutil.copyfile(FIXTURES / name, folder / f"{stem}-{i}.{suffix}")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a PDF")
    (folder / "broken.docx").write_bytes(b"PK\x03\x04 not a zip")
    (folder / "notes.xyz").write_bytes(b"not a document format")
    return folder


def _contents(index: Index) -> list:
    docs = index.documents()
    return [
        (d.source, d.sha256, d.chunks, index.document_text(d.source))
        for d in sorted(docs, key=lambda d: d.source)
    ]


def _build(folder: Path, tmp_path: Path, settings, fake_embedder, threads: int, name: str):
    s = settings.with_(threads=threads, index_dir=tmp_path / name)
    events = []
    index = Index.build(
        [folder],
        s.index_dir,
        settings=s,
        embedder=fake_embedder,
        progress=lambda e, n, t: events.append((e, n, t)),
    )
    report = index.sync([folder])  # unchanged now: read nothing again
    return index, events, report


def test_workers_give_the_same_index_report_and_errors(
    mixed, tmp_path, settings, fake_embedder, monkeypatch
):
    calls = []
    real_submit = Loads._submit
    monkeypatch.setattr(
        Loads, "_submit", lambda self, job: calls.append(job.path.name) or real_submit(self, job)
    )
    serial, serial_events, _ = _build(mixed, tmp_path, settings, fake_embedder, 1, "serial")
    assert calls == []  # one worker: all in-process
    par, par_events, again = _build(mixed, tmp_path, settings, fake_embedder, 2, "parallel")
    assert sorted(calls) == sorted(
        p.name for p in mixed.iterdir() if p.suffix in (".html", ".pdf", ".docx")
    )  # plain text is read in-process, unsupported files not at all
    assert _contents(par) == _contents(serial)
    assert len(_contents(par)) == 15
    assert [e for e in par_events if e[0] == "files"] == [
        e for e in serial_events if e[0] == "files"
    ]
    first_par = par.sync([mixed])
    first_serial = serial.sync([mixed])
    assert first_par.skipped == first_serial.skipped
    reasons = {s.source.rsplit("/", 1)[-1]: s for s in first_par.skipped}
    assert set(reasons) == {"broken.pdf", "broken.docx", "notes.xyz"}
    assert reasons["broken.pdf"].failed and reasons["broken.docx"].failed
    assert not reasons["notes.xyz"].failed
    assert len(again.unchanged) == 15


def test_changed_files_are_parsed_again_in_workers(mixed, tmp_path, settings, fake_embedder):
    index, _, _ = _build(mixed, tmp_path, settings, fake_embedder, 2, "index")
    html = mixed / "sample-1.html"
    html.write_text("<html><body><h1>New</h1><p>Completely new text here.</p></body></html>")
    report = index.sync([mixed])
    assert report.updated == (index.source_for(html),)
    assert "Completely new text here." in index.document_text(index.source_for(html))


def test_loads_keep_the_order_and_match_in_process(mixed, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PARALLEL", 1)
    jobs = [Job(p, p.name, None) for p in sorted(mixed.iterdir())]
    inline = [(j.path.name, read_and_load(j)) for j in jobs]
    pooled = [(j.path.name, r) for j, r in Loads(2).run(jobs)]
    assert [n for n, _ in pooled] == [n for n, _ in inline]
    for (_, a), (_, b) in zip(pooled, inline, strict=True):
        assert (a.sha256, a.same, a.error) == (b.sha256, b.same, b.error)
        assert (a.doc.text if a.doc else None) == (b.doc.text if b.doc else None)


def test_unchanged_content_is_not_loaded(mixed):
    path = mixed / "sample-0.html"
    first = read_and_load(Job(path, "x", None))
    again = read_and_load(Job(path, "x", first.sha256))
    assert again.same and again.doc is None and again.sha256 == first.sha256
