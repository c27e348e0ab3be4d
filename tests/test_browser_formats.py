"""The chat's upload of every kind of file, in a real browser (Debian's Chromium, Playwright).

`python app.py` runs on a new, empty temporary index with the real embedder. The page lists
the formats the upload reads; the browser uploads a pptx, an xlsx, an epub, an eml and a PNG of
rendered text (made here by tests/test_formats.py's makers), sees each one indexed, then asks
questions that only one file answers and finds the answer cited with its locator (slide,
sheet and row, message, OCR'd page) in the sources panel. Screenshots go to the test's
temporary folder (QA_SCREENSHOT_DIR=DIR copies them there too).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_browser import SCREENSHOT_DIR, ask, launch, running_app, wait_status
from test_browser import pytestmark as browser_marks
from test_formats import FACTS, MAKERS

pytestmark = [
    *browser_marks,
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract"),
]

UPLOADS = ("deck.pptx", "budget.xlsx", "novel.epub", "invoice.eml", "scan.png")
# file -> what the extractive answer to its question contains, and the locator shown
ANSWERS = {
    "deck.pptx": ("1987", "slide 2"),
    "budget.xlsx": ("4711", "sheet Sales, row 3"),
    "invoice.eml": ("380 pounds", "message 1"),
    "scan.png": ("basement vault", "p. 1"),
}


@pytest.fixture(scope="module")
def empty_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-formats")
    with running_app(root, root / "index") as url:  # the index is made on start
        yield url, root


def test_every_format_uploads_and_answers_cite_their_locator(empty_app, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    url, root = empty_app
    made = tmp_path / "made"
    made.mkdir()
    files = [MAKERS[name](made / name) for name in UPLOADS]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.wait_for_selector("#qa-question textarea")

        # the Documents tab lists every kind of file, with OCR said to be on
        page.get_by_role("tab", name="Documents").click()
        formats = page.locator("#qa-formats")
        formats.wait_for()
        listed = formats.inner_text()
        for kind in ("Documents", "Slides", "Spreadsheets", "E-books", "Mail", "Images (OCR)"):
            assert kind in listed, listed
        for suffix in (".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".tsv", ".epub", ".odt"):
            assert suffix in listed, listed
        for suffix in (".rtf", ".eml", ".mbox", ".png", ".jpg", ".tiff", ".html", ".md"):
            assert suffix in listed, listed
        assert "read by OCR" in listed
        page.screenshot(path=shots / "formats.png")

        # five formats in one upload: each indexed (the PNG by OCR)
        page.set_input_files("#qa-upload input[type=file]", [str(f) for f in files])
        report = page.locator("#qa-report .qa-report-summary")
        report.wait_for(timeout=600_000)
        rows = page.locator("#qa-report tbody tr")
        outcomes = {
            rows.nth(i).locator("td").nth(0).inner_text(): rows.nth(i)
            .locator("td")
            .nth(1)
            .inner_text()
            for i in range(rows.count())
        }
        assert outcomes == dict.fromkeys(UPLOADS, "indexed"), page.locator(
            "#qa-report"
        ).inner_text()
        docs = page.locator("#qa-docs")
        for name in UPLOADS:
            docs.locator(f"text=uploads/{name}").wait_for()
            assert (root / "uploads" / name).is_file()
        page.screenshot(path=shots / "uploaded.png", full_page=True)

        # a question only one file answers: cited with the file and its locator
        page.get_by_role("tab", name="Chat").click()
        for turn_no, (name, (answer, where)) in enumerate(ANSWERS.items(), 1):
            ask(page, FACTS[name][2])
            turn = wait_status(page, turn_no, "answered refused error")
            text = turn.locator(".qa-text").inner_text()
            assert turn.get_attribute("data-status") == "answered", (name, text)
            assert answer in text, (name, text)
            cite = turn.locator(".qa-cite").first
            target = cite.get_attribute("data-target")
            cite.click()
            page.wait_for_function(f"document.getElementById('{target}').open")
            summary = page.locator(f"#{target} summary")
            assert f"uploads/{name}" in summary.inner_text(), (name, summary.inner_text())
            assert summary.locator(".qa-src-page").inner_text() == where
            assert answer in page.locator(f"#{target} mark.qa-hl").inner_text()
            if name == "budget.xlsx":
                page.screenshot(path=shots / "cited-sheet-row.png")
        browser.close()
    if SCREENSHOT_DIR:
        folder = Path(SCREENSHOT_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copy(shot, folder / f"formats-{shot.name}")
