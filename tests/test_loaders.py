"""Loaders: real fixture files per format, bad inputs, and directory expansion."""

from __future__ import annotations

import os
import random
from pathlib import Path

import docx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfWriter

from qa.ingest.loaders import SUFFIXES, Unsupported, iter_files, load
from qa.records import Document

FIXTURES = Path(__file__).parent / "fixtures"


def check_invariants(doc: Document) -> None:
    assert doc.text.strip()
    previous_end = 0
    for section in doc.sections:
        assert 0 <= section.start <= section.end <= len(doc.text)
        assert section.start >= previous_end, "sections sorted and non-overlapping"
        previous_end = section.end


def headings_of(doc: Document, sentence: str) -> tuple[str, ...]:
    section = doc.section_at(doc.text.index(sentence))
    assert section is not None
    return section.headings


def random_bytes(n: int = 4096, seed: int = 7) -> bytes:
    return bytes(random.Random(seed).getrandbits(8) for _ in range(n))


# ---------------------------------------------------------------- formats


def test_suffixes():
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"} < SUFFIXES
    more = {".pptx", ".xlsx", ".csv", ".tsv", ".epub", ".odt", ".rtf", ".eml", ".mbox"}
    assert more | {".png", ".jpg", ".jpeg", ".tif", ".tiff"} < SUFFIXES
    assert ".7z" not in SUFFIXES and ".exe" not in SUFFIXES


def test_text():
    doc = load(FIXTURES / "sample.txt")
    check_invariants(doc)
    assert doc.source == str(FIXTURES / "sample.txt")
    assert doc.title == "sample"
    assert "The tide table changes every month." in doc.text
    assert doc.sections == ()


def test_text_bom_crlf_and_source(tmp_path):
    path = tmp_path / "notes.TXT"
    path.write_bytes(b"\xef\xbb\xbfline one\r\nline two\r\n")
    doc = load(path, source="corpus/notes.TXT")
    assert doc.text == "line one\nline two\n"
    assert doc.source == "corpus/notes.TXT"


def test_markdown():
    doc = load(FIXTURES / "sample.md")
    check_invariants(doc)
    assert doc.title == "Field Guide"
    assert "Install the binoculars first." in doc.text
    assert "# comment inside a code block" in doc.text
    assert headings_of(doc, "Intro line") == ()
    assert headings_of(doc, "Welcome to the field guide.") == ("Field Guide",)
    assert headings_of(doc, "Install the binoculars") == ("Field Guide", "Install")
    assert headings_of(doc, "# comment inside") == ("Field Guide", "Install")
    assert headings_of(doc, "On Linux the strap") == ("Field Guide", "Install", "Linux")
    assert headings_of(doc, "Look through") == ("Field Guide", "Usage")
    assert headings_of(doc, "## not a heading either") == ("Field Guide", "Usage")
    assert headings_of(doc, "Closing words.") == ("Field Guide", "Usage")
    assert len(doc.sections) == 5


def test_markdown_setext_closing_hashes_front_matter(tmp_path):
    path = tmp_path / "notes.markdown"
    path.write_text(
        "---\ntitle: x\n---\n\nTop Title\n=========\n\nBody.\n\nPart Two\n--------\n\nMore.\n"
        "\n    # indented code, not a heading\n\n#hashtag is not a heading\n\n### Extra ###\nEnd.\n",
        encoding="utf-8",
    )
    doc = load(path)
    check_invariants(doc)
    assert doc.title == "Top Title"
    assert headings_of(doc, "Body.") == ("Top Title",)
    assert headings_of(doc, "More.") == ("Top Title", "Part Two")
    assert headings_of(doc, "#hashtag") == ("Top Title", "Part Two")
    assert headings_of(doc, "End.") == ("Top Title", "Part Two", "Extra")
    assert doc.sections[0].headings == ()  # the front matter


def test_markdown_without_h1_uses_stem(tmp_path):
    path = tmp_path / "readme.md"
    path.write_text("## Only a subheading\n\ntext\n", encoding="utf-8")
    doc = load(path)
    assert doc.title == "readme"
    assert headings_of(doc, "text") == ("Only a subheading",)


def test_html():
    doc = load(FIXTURES / "sample.html")
    check_invariants(doc)
    assert doc.title == "Ferry Timetable"
    text = doc.text
    assert "The morning ferry leaves Harbour Quay at seven o'clock sharp." in text
    assert "In winter the last crossing is at five in the afternoon." in text
    for dropped in (
        "trackingSecret",
        "script text",
        "late script text",
        "crimson",
        "stylerule",
        "Home navigation link",
        "About us",
        "Hidden banner",
        "Sidebar advert",
        "Enable JavaScript",
        "Footer copyright",
        "#",
    ):
        assert dropped not in text, dropped
    # blocks are paragraphs or lines; inline elements flow; headings stand alone
    assert "\n\nWinter schedule\n\n" in text
    assert "No ferry on New Year's Day.\nReduced service at Easter." in text
    assert "Route | Minutes\nQuay to Island | 25" in text
    assert "Adult   4.50\nChild   2.00" in text  # <pre> keeps its whitespace
    assert "  " not in text.replace("Adult   4.50", "").replace("Child   2.00", "")
    assert headings_of(doc, "The morning ferry") == ("Ferry Timetable",)
    assert headings_of(doc, "In winter") == ("Ferry Timetable", "Winter schedule")
    assert headings_of(doc, "Reduced service") == ("Ferry Timetable", "Winter schedule", "Holidays")
    assert headings_of(doc, "Quay to Island") == ("Ferry Timetable", "Winter schedule", "Holidays")
    assert headings_of(doc, "Adult") == ("Ferry Timetable", "Tickets")


def test_html_declared_charset_and_h1_title(tmp_path):
    path = tmp_path / "page.HTM"
    html = '<html><head><meta charset="iso-8859-1"></head><body><h1>Café</h1><p>Crème brûlée.'
    path.write_bytes(html.encode("latin-1"))
    doc = load(path)
    assert doc.title == "Café"
    assert "Crème brûlée." in doc.text
    assert headings_of(doc, "Crème") == ("Café",)


def test_html_article_header_is_kept(tmp_path):
    path = tmp_path / "a.html"
    path.write_text(
        "<body><header>Site banner</header><article><header><h1>Post</h1></header>"
        "<p>Body<br>next line</p><footer>Posted Monday</footer></article></body>",
        encoding="utf-8",
    )
    doc = load(path)
    assert "Site banner" not in doc.text
    assert doc.title == "Post"
    assert "Body\nnext line" in doc.text
    assert "Posted Monday" in doc.text


def test_pdf():
    doc = load(FIXTURES / "sample.pdf")
    check_invariants(doc)
    assert doc.title == "Lighthouse Report"
    first = "The lighthouse keeper logged seven ships on Monday."
    second = "The second page describes the copper lantern repairs."
    assert first in doc.text and second in doc.text
    assert "\n\n" in doc.text[doc.text.index(first) : doc.text.index(second)]
    assert doc.section_at(doc.text.index(first)).page == 1
    assert doc.section_at(doc.text.index("Fog rolled in")).page == 1
    assert doc.section_at(doc.text.index(second)).page == 2
    assert doc.section_at(doc.text.index("Parts arrived from Bergen.")).page == 2
    assert [s.page for s in doc.sections] == [1, 2]


def test_pdf_oddities_are_not_logged(tmp_path, caplog):
    data = (FIXTURES / "sample.pdf").read_bytes().replace(b"/WinAnsiEncoding", b"/WinAnsiEncodinX")
    path = make(tmp_path, "odd.pdf", data)
    assert "copper lantern" in load(path).text
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]


def test_pdf_without_text_and_encrypted(tmp_path):
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    blank = tmp_path / "scan.pdf"
    with blank.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(Unsupported, match=r"PDF has no text layer \(scanned\?\)"):
        load(blank)

    writer = PdfWriter(clone_from=FIXTURES / "sample.pdf")
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(Unsupported, match="encrypted PDF: it needs a password"):
        load(locked)


def test_pdf_encrypted_with_empty_user_password_opens(tmp_path):
    writer = PdfWriter(clone_from=FIXTURES / "sample.pdf")
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    path = tmp_path / "owner-only.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    assert "copper lantern" in load(path).text


def test_docx():
    doc = load(FIXTURES / "sample.docx")
    check_invariants(doc)
    assert doc.title == "Garden Handbook"
    assert "Water the tomatoes every morning before nine." in doc.text
    assert "\n\nRain barrels must be covered with a fine mesh.\n\n" in doc.text
    assert "Tool | Shelf\nRake | Top shelf" in doc.text
    assert headings_of(doc, "This handbook") == ("Garden Handbook",)
    assert headings_of(doc, "Water the tomatoes") == ("Garden Handbook", "Watering")
    assert headings_of(doc, "Rain barrels must") == ("Garden Handbook", "Watering", "Rain barrels")
    assert headings_of(doc, "Return every spade") == ("Garden Handbook", "Tools")
    assert headings_of(doc, "Rake | Top shelf") == ("Garden Handbook", "Tools")


def test_docx_title_falls_back_to_first_heading(tmp_path):
    d = docx.Document()
    d.core_properties.title = ""
    d.add_paragraph("Preface text.")
    d.add_heading("Chapter One", level=1)
    d.add_paragraph("Story text.")
    path = tmp_path / "book.docx"
    d.save(path)
    doc = load(path)
    assert doc.title == "Chapter One"
    assert headings_of(doc, "Preface") == ()
    assert headings_of(doc, "Story text.") == ("Chapter One",)


def test_docx_merged_cells_and_custom_heading_style(tmp_path):
    d = docx.Document()
    table = d.add_table(rows=2, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Merged header"
    table.cell(0, 2).text = "Last"
    table.cell(1, 0).text = "Only cell"
    style = d.styles.add_style("Chapter", 1)  # a paragraph style based on Heading 2
    style.base_style = d.styles["Heading 2"]
    d.add_paragraph("Appendix", style="Chapter")
    d.add_paragraph("Closing remarks.")
    path = tmp_path / "merged.docx"
    d.save(path)
    doc = load(path)
    assert doc.text.startswith("Merged header | Last\nOnly cell\n\n")
    assert headings_of(doc, "Closing remarks.") == ("Appendix",)
    assert headings_of(doc, "Only cell") == ()


# ---------------------------------------------------------------- bad inputs


def make(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("image.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "corrupt or unreadable PNG image"),
        ("archive.7z", b"7z\xbc\xaf\x27\x1c" + bytes(64), "unsupported file type .7z"),
        ("noext", b"hello", "unsupported file type (none)"),
        ("junk.pdf", random_bytes(), "PDF"),
        ("junk.docx", random_bytes(), "DOCX"),
        ("fake.docx", b"PK\x05\x06" + bytes(18), "corrupt DOCX"),
        ("old.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "legacy .doc"),
        ("binary.txt", b"\x7fELF\x02\x01\x01\x00" + random_bytes(512), "not UTF-8 text"),
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\n\t\n", "no text"),
        ("utf16.txt", b"\xff\xfe\x00\xd8", "not UTF-16 text"),  # a lone surrogate
        ("control.txt", b"abc\x01\x02\x03\x81\x8d", "not UTF-8 text"),
        ("png.txt", b"\x89PNG\r\n\x1a\n" + bytes(64), "binary data"),  # NULs, yet not UTF-16
        ("nul.md", b"# Title\n\x00\x00\x13\x37" + random_bytes(256), "binary data"),
        ("binary.html", b"\x00\x01\x02" + random_bytes(256), "binary"),
        ("empty.html", b"<html><script>x()</script></html>", "no text"),
        ("truncated.pdf", (FIXTURES / "sample.pdf").read_bytes()[:300], "PDF"),
    ],
)
def test_bad_inputs_raise_unsupported(tmp_path, name, data, reason):
    with pytest.raises(Unsupported) as info:
        load(make(tmp_path, name, data))
    message = str(info.value)
    assert reason in message
    assert message and "\n" not in message


def test_directory_and_missing_file_are_unsupported(tmp_path):
    (tmp_path / "dir.txt").mkdir()
    with pytest.raises(Unsupported, match="not a regular file"):
        load(tmp_path / "dir.txt")
    with pytest.raises(Unsupported):
        load(tmp_path / "missing.md")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2048), suffix=st.sampled_from(sorted(SUFFIXES)))
def test_arbitrary_bytes_load_or_raise_unsupported(tmp_path, data, suffix):
    path = make(tmp_path, "fuzz" + suffix, data)
    try:
        doc = load(path)
    except Unsupported as exc:
        assert str(exc)
    else:
        check_invariants(doc)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.sampled_from(
            ["# A", "## B", "### C", "text.", "", "```", "~~~", "===", "---", "    # code", "#x"]
        ),
        min_size=1,
        max_size=30,
    )
)
def test_markdown_sections_always_valid(tmp_path, lines):
    path = make(tmp_path, "gen.md", "\n".join(lines + ["tail."]).encode())
    check_invariants(load(path))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    parts=st.lists(
        st.sampled_from(
            ["<h1>T</h1>", "<h2>U</h2>", "<p>", "</p>", "word", " ", "<br>", "<pre>\n a  b</pre>"]
            + [
                "<td>c</td>",
                "<tr>",
                "<li>i",
                "<div>",
                "</div>",
                "<b>",
                "</b>",
                "<script>s</script>",
            ]
        ),
        max_size=30,
    )
)
def test_html_sections_always_valid(tmp_path, parts):
    path = make(tmp_path, "gen.html", ("".join(parts) + "<p>end.</p>").encode())
    check_invariants(load(path))


def test_deeply_nested_html(tmp_path):
    html = "<div>" * 5000 + "deep text" + "</div>" * 5000
    doc = load(make(tmp_path, "deep.html", html.encode()))
    assert "deep text" in doc.text


# ---------------------------------------------------------------- iter_files


def test_iter_files_recurses_sorted_and_skips_hidden(tmp_path):
    for name in ["b.txt", "a.md", "sub/z.pdf", "sub/deeper/y.txt", "A.html", "sub/c.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    for name in [".hidden.txt", ".git/config.txt", "sub/.cache/x.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_files([tmp_path])]
    assert found == ["A.html", "a.md", "b.txt", "sub/c.txt", "sub/deeper/y.txt", "sub/z.pdf"]
    assert list(iter_files([tmp_path])) == list(iter_files([tmp_path]))


def test_iter_files_yields_given_files_and_survives_symlink_loops(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x", encoding="utf-8")
    os.symlink(tmp_path / "docs", tmp_path / "docs" / "loop")
    given = tmp_path / ".explicit.txt"
    given.write_text("x", encoding="utf-8")
    found = list(iter_files([given, tmp_path / "docs"]))
    assert found == [given, tmp_path / "docs" / "a.txt"]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("café crème".encode("latin-1"), "café crème"),
        ("Grüße".encode("utf-16"), "Grüße"),  # with a byte-order mark
        ("\ufeffKraków".encode("utf-16-be"), "Kraków"),
        ("naïve\r\nline".encode("utf-8-sig"), "naïve\nline"),
        ("He said “hello” – it cost €5.".encode("cp1252"), "He said “hello” – it cost €5."),
        (
            "Grüße aus Köln, schöne Straße.\n".encode("utf-16-le"),
            "Grüße aus Köln, schöne Straße.\n",
        ),
        ("Hello world\n".encode("utf-16-be"), "Hello world\n"),  # no BOM, ASCII: endianness by NULs
        (
            "Привет, как дела? Это тестовый файл.".encode("cp1251"),
            "Привет, как дела? Это тестовый файл.",
        ),
        (
            "Καλημέρα κόσμε, αυτό είναι ένα αρχείο.".encode("cp1253"),
            "Καλημέρα κόσμε, αυτό είναι ένα αρχείο.",
        ),
    ],
)
def test_legacy_and_bom_encodings_are_decoded(tmp_path, data, text):
    """UTF-16 without a BOM and non-Latin code pages are detected by charset-normalizer."""
    path = tmp_path / "t.txt"
    path.write_bytes(data)
    assert load(path).text == text
