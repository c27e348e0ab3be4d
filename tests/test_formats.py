"""The loaders of pptx, xlsx, csv/tsv, epub, odt, rtf, eml, mbox and images, each on files this
test makes itself: the facts are in the text, each located (slide, sheet and row, chapter,
message, page) and with exact offsets. `make_*` build the files (also used by the bad-input
and end-to-end tests)."""

from __future__ import annotations

import csv
import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest

from qa.ingest.loaders import load
from qa.records import Locator

# file name -> (its fact, the locator of the fact, a question it answers)
FACTS: dict[str, tuple[str, Locator, str]] = {
    "deck.pptx": (
        "The harbour crane was painted orange in 1987.",
        Locator(slide=2),
        "When was the harbour crane painted orange?",
    ),
    "budget.xlsx": (
        "Region: Zanzibar; Revenue: 4711",
        Locator(sheet="Sales", row=3),
        "What revenue did the Zanzibar region make?",
    ),
    "stations.csv": (
        "Station: Ravenscar; Rainfall: 913",
        Locator(row=3),
        "How much rainfall did Ravenscar station record?",
    ),
    "ferries.tsv": (
        "Ferry: Kittiwake; Crossings: 58",
        Locator(row=2),
        "How many crossings did the Kittiwake ferry make?",
    ),
    "novel.epub": (
        "The lighthouse keeper Oskar Brandt kept a tame raven called Mirko.",
        Locator(chapter=2),
        "What was the name of the lighthouse keeper's raven?",
    ),
    "minutes.odt": (
        "The committee voted to rebuild the footbridge over the Wensum in granite.",
        None,
        "What will the footbridge over the Wensum be rebuilt in?",
    ),
    "letter.rtf": (
        "The orchard at Pellworth grows forty-two varieties of quince.",
        None,
        "How many varieties of quince grow at the Pellworth orchard?",
    ),
    "invoice.eml": (
        "The boiler service at Hartley Mill costs 380 pounds.",
        Locator(message=1),
        "How much does the boiler service at Hartley Mill cost?",
    ),
    "archive.mbox": (
        "The choir rehearsal moved to the old granary on Thursday evenings.",
        Locator(message=2),
        "Where did the choir rehearsal move to?",
    ),
    "scan.png": (
        "The museum archive keeps the telescope maps in the basement vault.",
        Locator(page=1),
        "Where does the museum archive keep the telescope maps?",
    ),
    "scan.pdf": (
        "The bakery on Mill Lane sells rye bread every Saturday morning.",
        Locator(page=2),
        "When does the bakery on Mill Lane sell rye bread?",
    ),
}


def fact(name: str) -> str:
    return FACTS[name][0]


def make_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Harbour works"
    slide.placeholders[1].text = "The quay wall was repaired last spring."
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "The crane"
    slide.placeholders[1].text = fact("deck.pptx")
    rows = slide.shapes.add_table(2, 2, Inches(1), Inches(5), Inches(4), Inches(1)).table
    for (r, c), value in {
        (0, 0): "Part",
        (0, 1): "Colour",
        (1, 0): "Jib",
        (1, 1): "Orange",
    }.items():
        rows.cell(r, c).text = value
    slide.notes_slide.notes_text_frame.text = "Mention that the paint came from Bergen."
    deck.save(path)
    return path


def make_xlsx(path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Sales"
    for row in [("Region", "Revenue"), ("Orkney", 1200), ("Zanzibar", 4711), ("Lofoten", 990)]:
        sheet.append(row)
    other = book.create_sheet("Staff")
    other.append(("Name", "Role"))
    other.append(("Ada Quill", "Cartographer"))
    book.save(path)
    return path


def make_delimited(path: Path, rows: list[tuple[str, str]], delimiter: str) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


def make_csv(path: Path) -> Path:
    rows = [("Station", "Rainfall"), ("Whitby", "640"), ("Ravenscar", "913"), ("Filey", "587")]
    return make_delimited(path, rows, ",")


def make_tsv(path: Path) -> Path:
    return make_delimited(path, [("Ferry", "Crossings"), ("Kittiwake", "58")], "\t")


def make_epub(path: Path) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("qa-test-book")
    book.set_title("The Keeper")
    book.set_language("en")
    chapters = []
    for n, (title, body) in enumerate(
        [
            ("Arrival", "The supply boat reached the island at dawn."),
            ("The Raven", fact("novel.epub")),
        ],
        1,
    ):
        chapter = epub.EpubHtml(title=title, file_name=f"ch{n}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>{title}</h1><p>{body}</p></body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = chapters
    epub.write_epub(str(path), book)
    return path


def make_odt(path: Path) -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    doc = OpenDocumentText()
    doc.text.addElement(H(outlinelevel=1, text="Parish minutes"))
    doc.text.addElement(P(text="Present: eleven members."))
    doc.text.addElement(H(outlinelevel=2, text="Bridges"))
    doc.text.addElement(P(text=fact("minutes.odt")))
    doc.save(str(path))
    return path


def make_rtf(path: Path) -> Path:
    body = fact("letter.rtf")
    path.write_bytes(
        b"{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Times New Roman;}}"
        b"{\\colortbl;\\red0\\green0\\blue0;}\\f0\\fs24 Dear Caf\\'e9 owner,\\par "
        + body.encode()
        + b"\\par }"
    )
    return path


def _message(subject: str, body: str, sender: str = "ann@example.org") -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = "office@example.org"
    message["Date"] = "Mon, 02 Jun 2025 09:30:00 +0000"
    message.set_content(body)
    return message


def make_eml(path: Path) -> Path:
    message = _message("Boiler service", "Hello, the quote is attached.")
    message.add_attachment(fact("invoice.eml"), filename="quote.txt")
    path.write_bytes(bytes(message))
    return path


def make_mbox(path: Path) -> Path:
    box = mailbox.mbox(path)
    box.add(_message("Parking", "The car park closes at ten."))
    box.add(_message("Choir", fact("archive.mbox"), "bob@example.org"))
    box.flush()
    box.close()
    return path


def page_image(text: str, size: int = 40, width: int = 1700):
    """A white page with `text` drawn at `size` pixels, wrapped to `width`."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size)  # Pillow's bundled FreeType font
    words, lines, line = text.split(), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if font.getlength(trial) > width - 200 and line:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    height = max(400, 200 + int(len(lines) * size * 1.5))
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for i, text_line in enumerate(lines):
        draw.text((100, 100 + int(i * size * 1.5)), text_line, font=font, fill=0)
    return image


def make_png(path: Path) -> Path:
    page_image(fact("scan.png")).save(path, dpi=(300, 300))
    return path


def make_scanned_pdf(path: Path) -> Path:
    """A two-page PDF of images only (no text layer), as a scanner makes."""
    first = page_image("Opening hours are posted on the shop door.")
    second = page_image(fact("scan.pdf"))
    first.save(path, "PDF", resolution=300, save_all=True, append_images=[second])
    return path


MAKERS = {
    "deck.pptx": make_pptx,
    "budget.xlsx": make_xlsx,
    "stations.csv": make_csv,
    "ferries.tsv": make_tsv,
    "novel.epub": make_epub,
    "minutes.odt": make_odt,
    "letter.rtf": make_rtf,
    "invoice.eml": make_eml,
    "archive.mbox": make_mbox,
    "scan.png": make_png,
    "scan.pdf": make_scanned_pdf,
}


def make_all(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {name: make(folder / name) for name, make in MAKERS.items()}


def words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() else " " for c in text).split()


def located_fact(doc, name: str):
    """The offset of the file's fact in the loaded text (OCR text compared word by word)."""
    wanted = fact(name)
    at = doc.text.find(wanted)
    if at < 0:  # OCR: the same words, maybe other line breaks
        flat = " ".join(doc.text.split())
        assert " ".join(words(wanted)) in " ".join(words(flat)), doc.text
        at = doc.text.find(wanted.split()[1])
    assert at >= 0, doc.text
    return at


@pytest.mark.parametrize("name", [n for n in MAKERS if n not in ("scan.png", "scan.pdf")])
def test_each_loader_reads_its_fact_located(tmp_path, name):
    path = MAKERS[name](tmp_path / name)
    doc = load(path, source=name)
    at = located_fact(doc, name)
    section = doc.section_at(at)
    expected = FACTS[name][1]
    assert (section.locator if section is not None else None) == expected, (section, doc.text)
    for s in doc.sections:  # sections are in order and inside the text
        assert 0 <= s.start < s.end <= len(doc.text)
    assert doc.text == doc.text.replace("\r", "")


def test_pptx_has_titles_tables_and_notes(tmp_path):
    doc = load(make_pptx(tmp_path / "deck.pptx"))
    assert doc.title == "Harbour works"
    assert "Part | Colour\nJib | Orange" in doc.text
    notes = doc.text.index("Notes: Mention that the paint came from Bergen.")
    assert doc.section_at(notes).locator == Locator(slide=2)
    assert doc.section_at(notes).headings == ("Slide 2: The crane",)
    assert doc.section_at(0).locator == Locator(slide=1)


def test_xlsx_rows_name_their_header_and_sheet(tmp_path):
    doc = load(make_xlsx(tmp_path / "budget.xlsx"))
    at = doc.text.index("Name: Ada Quill; Role: Cartographer")
    assert doc.section_at(at).locator == Locator(sheet="Staff", row=2)
    assert doc.section_at(at).headings == ("Staff",)
    assert doc.section_at(0).locator == Locator(sheet="Sales", row=1)  # the header row


def test_csv_sniffs_semicolons_and_decodes_latin1(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes("Ville;Café\nNîmes;Crème\n".encode("latin-1"))
    doc = load(path)
    assert "Ville: Nîmes; Café: Crème" in doc.text


def test_epub_chapters_keep_headings(tmp_path):
    doc = load(make_epub(tmp_path / "novel.epub"))
    assert doc.title == "The Keeper"
    at = doc.text.index("tame raven")
    assert doc.section_at(at).headings == ("The Raven",)
    assert doc.section_at(0).locator == Locator(chapter=1)


def test_odt_headings_make_sections(tmp_path):
    doc = load(make_odt(tmp_path / "minutes.odt"))
    assert doc.title == "Parish minutes"
    assert doc.section_at(doc.text.index("footbridge")).headings == ("Parish minutes", "Bridges")


def test_rtf_decodes_its_code_page(tmp_path):
    doc = load(make_rtf(tmp_path / "letter.rtf"))
    assert doc.text.startswith("Dear Café owner,")
    assert "{" not in doc.text and "\\" not in doc.text


def test_eml_has_headers_body_and_text_attachment(tmp_path):
    doc = load(make_eml(tmp_path / "invoice.eml"))
    assert doc.title == "Boiler service"
    assert doc.text.startswith("Subject: Boiler service\nFrom: ann@example.org")
    assert "Hello, the quote is attached." in doc.text
    assert "Attachment quote.txt:\n" + fact("invoice.eml") in doc.text


def test_html_mail_body_is_its_visible_text(tmp_path):
    message = _message("News", "plain")
    message.set_content("<html><body><p>The <b>kiln</b> is lit.</p><script>x()</script>")
    message.replace_header("Content-Type", 'text/html; charset="utf-8"')
    path = tmp_path / "news.eml"
    path.write_bytes(bytes(message))
    assert "The kiln is lit." in load(path).text
    assert "x()" not in load(path).text


def test_mbox_messages_are_located_by_number(tmp_path):
    doc = load(make_mbox(tmp_path / "archive.mbox"))
    assert doc.section_at(doc.text.index("car park")).locator == Locator(message=1)
    assert doc.section_at(doc.text.index("granary")).headings == ("Choir",)


def test_a_span_over_several_rows_is_narrowed_to_its_rows():
    span = Locator(sheet="S", row=4, row_end=7)
    assert span.label() == "sheet S, rows 4-7"
    text = "a: 1\n\nb: 2\n\nc: 3\n\nd: 4"
    start = text.index("c: 3")
    assert span.narrowed(text[:start], text[: start + 4]) == Locator(sheet="S", row=6)
    assert span.narrowed(text[:0], text) == span
    assert Locator.from_dict(span.to_dict()) == span
    assert Locator(page=3).label() == "page 3"
    assert Locator(message=2).to_dict() == {"message": 2}


def test_rows_pack_into_chunks_located_by_their_row_range(tmp_path, fake_embedder):
    from qa.ingest.chunking import chunk_document

    rows = [("Item", "Price")] + [(f"item{i}", str(i)) for i in range(40)]
    doc = load(make_delimited(tmp_path / "prices.csv", rows, ","))
    chunks = chunk_document(doc, fake_embedder.token_spans, 48, 8)
    assert 1 < len(chunks) < 41, "rows are packed, not one chunk each"
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        loc = chunk.locator
        first = doc.section_at(chunk.start).locator.row
        last = doc.section_at(chunk.end - 1).locator.row
        assert (loc.row, loc.row_end or loc.row) == (first, last), (chunk, loc)
