"""Parsing in worker processes: the same index, report and per-file errors as in-process."""

from __future__ import annotations

import os
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


@pytest.fixture
def scans(tmp_path) -> Path:
    """Four scanned images and a two-page scanned PDF: six pages for OCR."""
    from test_formats import make_png, make_scanned_pdf

    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(4):
        make_png(folder / f"scan-{i}.png")
    make_scanned_pdf(folder / "scan.pdf")
    return folder


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract")
def test_ocr_pages_read_in_workers_are_counted_as_they_go(
    scans, tmp_path, settings, fake_embedder, monkeypatch
):
    monkeypatch.setattr(parallel, "POLL_SECONDS", 0.05)
    runs = {}
    for threads in (1, 2):
        index, events, _ = _build(scans, tmp_path, settings, fake_embedder, threads, f"t{threads}")
        runs[threads] = (events, _contents(index))
    (serial, serial_docs), (par, par_docs) = runs[1], runs[2]
    assert par_docs == serial_docs
    for events in (serial, par):
        pages = [n for e, n, _ in events if e == "ocr"]
        assert pages == sorted(pages) and pages[-1] == 6, events  # one count, every page
        assert all(total is None for e, _, total in events if e == "ocr")
        # reported while files are read, not all at the end: before the last file is done
        first_ocr = next(i for i, e in enumerate(events) if e[0] == "ocr")
        assert first_ocr < events.index(("files", 5, 5)), events
    assert [e for e in par if e[0] == "files"] == [e for e in serial if e[0] == "files"]


def test_workers_get_a_share_of_the_threads(mixed):
    loads = Loads(2, threads=2)
    try:
        job = Job(mixed / "sample-0.pdf", "sample-0.pdf", None)
        assert loads._submit(job).result().doc is not None
        for name in parallel.THREAD_VARIABLES:
            assert loads._pool.submit(os.getenv, name).result() == "1"
    finally:
        loads.close()
    assert Loads(2, threads=8).worker_threads == 4
    assert Loads(4).worker_threads == 1


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract")
@pytest.mark.parametrize("ocr_on", [True, False])
def test_the_engine_reports_ocr_pages_unless_ocr_is_off(
    scans, tmp_path, settings, fake_embedder, ocr_on
):
    from qa import Engine

    s = settings.with_(threads=1, ocr=ocr_on)
    index = Index.open(s.index_dir, settings=s, embedder=fake_embedder, create=True)
    events = []
    report = Engine(s, index=index).index_files(
        [scans / "scan-0.png"], progress=lambda *e: events.append(e)
    )
    index.close()
    if ocr_on:
        assert len(report.added) == 1 and ("ocr", 1, None) in events
    else:
        assert [r.reason for r in report.skipped] == ["OCR is off (QA_OCR=0 or --no-ocr)"]
        assert not report.skipped[0].failed  # skipped by choice: not a partial failure
        assert not [e for e in events if e[0] == "ocr"]
