"""End to end: a folder with one file per format (made here, see test_formats) indexed with the
real default embedder; each file's fact is found by search and by ask, cited with the right
locator and exact offsets (`document_text(source)[start:end] == quote`), through the Python
API, `--json` and the CLI's printed sources."""

from __future__ import annotations

import json
import shutil

import pytest
from test_formats import FACTS, make_all

from qa import Engine, Settings
from qa.records import Locator

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract"),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    make_all(root / "docs")
    engine = Engine(Settings.load(index_dir=root / "index"), create=True)
    report = engine.index_files([root / "docs"])
    assert not report.skipped, report.skipped
    assert len(report.added) == len(FACTS)
    yield engine
    engine.close()


def _covers(locator: Locator | None, expected: Locator | None) -> bool:
    """A passage's locator holds the fact's: the same, or a row range around its row."""
    if expected is None or locator == expected:
        return locator == expected
    if locator is None or expected.row is None or locator.sheet != expected.sheet:
        return False
    return locator.row <= expected.row <= (locator.row_end or locator.row)


@pytest.mark.parametrize("name", sorted(FACTS))
def test_each_fact_is_found_and_cited_with_its_locator(engine, name):
    fact, expected, question = FACTS[name]
    source = f"docs/{name}"
    hits = engine.search(question, k=3)
    assert source in [h.source for h in hits], (question, [h.source for h in hits])
    hit = next(h for h in hits if h.source == source)
    assert engine.document_text(source)[hit.start : hit.end] == hit.text
    assert _covers(hit.locator, expected), hit
    assert hit.to_dict()["locator"] == (hit.locator.to_dict() if hit.locator else None)

    answer = engine.ask(question)
    assert not answer.refused, (question, answer.text)
    cited = [c for c in answer.citations if c.source == source]
    assert cited, (question, answer.citations)
    for c in cited:
        assert engine.document_text(source)[c.start : c.end] == c.quote
        assert c.locator == expected, (c, expected)  # rows narrowed to the quoted row
        assert c.to_dict()["locator"] == (expected.to_dict() if expected else None)
    if expected is not None and expected.page is not None:
        assert cited[0].page == expected.page  # PDFs and scans keep `page`


def _qa(*argv: str) -> str:
    """The CLI in its own process (it opens the index from disk, as a user's shell would)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "qa.cli", *argv], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (argv, done.returncode, done.stderr[-2000:])
    return done.stdout


def test_cli_shows_locators_in_search_and_json(engine):
    index = str(engine.settings.index_dir)
    out = _qa("search", "Zanzibar region revenue", "--index", index, "-k", "1")
    assert "docs/budget.xlsx" in out and "(sheet Sales, row" in out
    hits = json.loads(
        _qa("search", "choir rehearsal granary", "--index", index, "--json", "-k", "1")
    )
    assert hits[0]["source"] == "docs/archive.mbox"
    assert hits[0]["locator"] == {"message": 2}
    question = FACTS["deck.pptx"][2]
    answer = json.loads(_qa("ask", question, "--index", index, "--json"))
    assert {"slide": 2} in [c["locator"] for c in answer["citations"]]
    out = _qa("ask", question, "--index", index)
    assert "docs/deck.pptx:" in out and "(slide 2)" in out


def test_the_chat_source_viewer_shows_the_locator(engine):
    from qa.web.render import source_html, source_views

    answer = engine.ask(FACTS["archive.mbox"][2])
    views = [v for v in source_views(answer, engine.document_text) if "mbox" in v.source]
    assert views and views[0].where == "message 2"
    assert "message 2</span>" in source_html(1, views[0])
