"""OCR (Tesseract) of scanned PDF pages and images: facts found and located by page, a page
with a text layer never OCR'd, QA_OCR=0 / --no-ocr, progress, and the character error rate on
pages this test draws itself with Pillow (the figures `qa bench ocr` prints)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter
from test_formats import fact, located_fact, make_png, make_scanned_pdf, page_image

from qa.bench.ocr import PAGE_TEXT, cer, read_page, save_page
from qa.bench.ocr import page_image as bench_page
from qa.ingest import ocr
from qa.ingest.base import Unsupported
from qa.ingest.loaders import load
from qa.records import Locator

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract")


def test_an_image_is_read_by_ocr_and_located_as_page_1(tmp_path):
    doc = load(make_png(tmp_path / "scan.png"))
    at = located_fact(doc, "scan.png")
    assert doc.section_at(at).locator == Locator(page=1)
    assert doc.section_at(at).page == 1


def test_a_scanned_pdf_is_read_page_by_page(tmp_path):
    doc = load(make_scanned_pdf(tmp_path / "scan.pdf"))
    assert doc.section_at(located_fact(doc, "scan.pdf")).locator == Locator(page=2)
    assert doc.section_at(doc.text.index("Opening")).page == 1


def test_a_multi_page_tiff_is_one_page_per_frame(tmp_path):
    path = tmp_path / "fax.tiff"
    first, second = page_image("The first fax page is blank."), page_image(fact("scan.png"))
    first.save(path, save_all=True, append_images=[second])
    doc = load(path)
    assert doc.section_at(located_fact(doc, "scan.png")).locator == Locator(page=2)


def test_a_page_with_a_text_layer_is_not_ocrd(tmp_path, monkeypatch):
    calls = []
    real = ocr.ocr_image
    monkeypatch.setattr(ocr, "ocr_image", lambda image: calls.append(1) or real(image))
    text_pdf = load(FIXTURES / "sample.pdf")
    assert calls == [] and "copper lantern" in text_pdf.text
    # one text page and one scanned page: only the scanned one is OCR'd
    writer = PdfWriter(clone_from=FIXTURES / "sample.pdf")
    scan = PdfReader(make_scanned_pdf(tmp_path / "scan.pdf"))
    writer.add_page(scan.pages[1])
    mixed = tmp_path / "mixed.pdf"
    with mixed.open("wb") as fh:
        writer.write(fh)
    pages = len(writer.pages)
    doc = load(mixed)
    assert calls == [1]
    assert "copper lantern" in doc.text
    assert doc.section_at(located_fact(doc, "scan.pdf")).locator == Locator(page=pages)


def test_ocr_off_says_so_and_keeps_text_pages(tmp_path, monkeypatch):
    png, pdf = make_png(tmp_path / "scan.png"), make_scanned_pdf(tmp_path / "scan.pdf")
    monkeypatch.setenv("QA_OCR", "0")
    with pytest.raises(ocr.OcrOff, match=r"^OCR is off \(QA_OCR=0 or --no-ocr\)$"):
        load(png)
    with pytest.raises(ocr.OcrOff, match=r"PDF has no text layer \(scanned\?\) and OCR is off"):
        load(pdf)
    monkeypatch.delenv("QA_OCR")
    with ocr.configured(enabled=False), pytest.raises(Unsupported, match="OCR is off"):
        load(png)
    assert "telescope" in load(png).text  # on again after the block


def test_missing_tesseract_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(ocr.shutil, "which", lambda name: None)
    with pytest.raises(Unsupported) as info:
        load(make_png(tmp_path / "scan.png"))
    assert "apt-get install tesseract-ocr tesseract-ocr-eng" in str(info.value)
    assert "\n" not in str(info.value)


def test_progress_counts_ocr_pages(tmp_path):
    events = []
    with ocr.configured(progress=lambda *e: events.append(e)):
        load(make_scanned_pdf(tmp_path / "scan.pdf"))
    assert events == [("ocr", 1, None), ("ocr", 2, None)]


def test_cer_counts_edits():
    assert cer("abcd", "abcd") == 0.0
    assert cer("abcd", "abxd") == 0.25
    assert cer("ab  cd", "ab cd\n") == 0.0
    assert cer("abcd", "") == 1.0


@pytest.mark.parametrize("size", [6, 10, 16])
@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_character_error_rate_on_pages_drawn_here(tmp_path, size, suffix):
    path = save_page(bench_page(PAGE_TEXT, size), tmp_path / f"page{suffix}")
    assert cer(PAGE_TEXT, read_page(path)) < 0.02


def test_an_unreadable_image_is_one_line(tmp_path):
    path = tmp_path / "cut.png"
    buffer = io.BytesIO()
    page_image("Cut short.").save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[:200])
    with pytest.raises(Unsupported, match=r"^corrupt or unreadable PNG image"):
        load(path)


def test_no_ocr_flag_is_the_ocr_setting():
    from qa.cli.main import build_parser, settings_from

    parser = build_parser()
    assert settings_from(parser.parse_args(["index", "docs", "--no-ocr"])).ocr is False
    assert settings_from(parser.parse_args(["index", "docs"])).ocr is True
