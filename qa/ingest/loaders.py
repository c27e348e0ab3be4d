"""Turn files into `Document`s: plain text, Markdown, HTML, PDF and DOCX.

Text is read as UTF-8, or by its byte-order mark as UTF-16 or UTF-32; text that is not
UTF-8 but reads as Windows-1252 / Latin-1 is decoded as such (see `_decode`).

`load` never raises anything but `Unsupported` for a file it cannot read, so a corpus
with one bad file still indexes. Sections carry PDF page numbers and heading paths
("Guide", "Install", "Linux") as character offsets into `Document.text`.
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from qa.records import Document, Section

SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"})

logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # it logs every oddity it reads past

Heading = tuple[int, int, str]  # (offset, level, title)


class Unsupported(Exception):
    """A file that is not a supported, readable document; str(exc) is a one-line reason."""


def _reason(prefix: str, exc: BaseException) -> str:
    detail = " ".join(str(exc).split())[:120] or type(exc).__name__
    return f"{prefix}: {detail}"


def load(path: Path, source: str | None = None, data: bytes | None = None) -> Document:
    """Load one file, choosing the loader by suffix (case-insensitive). `data`: the file's
    bytes if the caller has already read them (so what is hashed is what is loaded)."""
    path = Path(path)
    suffix = path.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        raise Unsupported(f"unsupported file type {suffix or '(none)'}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return loader(path, source, data)
    except Unsupported:
        raise
    except RecursionError as exc:
        raise Unsupported(f"cannot read {suffix[1:].upper()}: nested too deeply") from exc
    except Exception as exc:  # a safety net: bad contents must never escape as anything else
        raise Unsupported(_reason(f"cannot read {suffix[1:].upper()}", exc)) from exc


def iter_files(
    paths: Iterable[Path], errors: list[tuple[Path, str]] | None = None
) -> Iterator[Path]:
    """Files given, and files under directories given (recursively, sorted by name).

    Hidden entries (names starting with '.') inside directories are skipped, as are
    special files (pipes, sockets, devices); a symlinked directory is entered once, so
    symlink loops end. A broken or looping symlink is yielded (reading it then fails with
    a clear reason). Folders that cannot be listed are appended to `errors` as
    (path, reason). Any depth of nesting works (no recursion).
    """
    seen_dirs: set[str] = set()
    yielded: set[Path] = set()

    def listing(directory: Path) -> list[os.DirEntry]:
        real = os.path.realpath(directory)
        if real in seen_dirs:
            return []
        seen_dirs.add(real)
        try:
            with os.scandir(directory) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if errors is not None:
                errors.append((directory, f"cannot read folder: {exc.strerror or exc}"))
            return []

    def walk(root: Path) -> Iterator[Path]:
        stack = [iter(listing(root))]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if _try(entry.is_dir):
                stack.append(iter(listing(path)))
            elif _try(entry.is_file):
                yield path
            elif _try(entry.is_symlink) and not _try(path.exists, True):
                yield path  # broken or looping link: reported when it is read

    for path in map(Path, paths):
        for file in walk(path) if path.is_dir() else [path]:
            if file not in yielded:
                yielded.add(file)
                yield file


# ---------------------------------------------------------------- shared helpers


def _try(fn, default=None):
    """fn(), or `default` if it raises."""
    try:
        return fn()
    except Exception:
        return default


def _read(path: Path, data: bytes | None = None) -> bytes:
    if data is None:
        if not path.is_file():
            raise Unsupported("not a regular file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise Unsupported(f"cannot read: {exc.strerror or exc}") from exc
    if not data:
        raise Unsupported("empty file")
    return data


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# Byte-order marks, longest first (a UTF-32 LE mark begins like a UTF-16 LE one).
_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32", "UTF-32"),
    (b"\xff\xfe\x00\x00", "utf-32", "UTF-32"),
    (b"\xef\xbb\xbf", "utf-8-sig", "UTF-8"),
    (b"\xff\xfe", "utf-16", "UTF-16"),
    (b"\xfe\xff", "utf-16", "UTF-16"),
)
# C0 control characters that never occur in text (tab, newlines, form feed are fine).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_NUL = re.compile("\x00")
LEGACY_MAX_NON_ASCII = 0.3  # Latin-1 prose is mostly ASCII letters with some accents


def _decode(data: bytes) -> str:
    """Text from bytes, newlines normalised: by byte-order mark (UTF-8, UTF-16, UTF-32),
    else UTF-8; UTF-8 with a few damaged bytes (a cut-off character) keeps the rest with
    U+FFFD in their place; else Windows-1252 / Latin-1 if the result reads as text."""
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise Unsupported(
                    f"not {name} text (invalid data after its byte-order mark)"
                ) from exc
            if (_CONTROL if codec != "utf-8-sig" else _NUL).search(text):
                raise Unsupported(f"not {name} text (binary data)")
            return _newlines(text)
    if b"\x00" in data:
        raise Unsupported("not UTF-8 text (binary data)")
    try:
        return _newlines(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="replace")
    damaged = text.count("\ufffd")
    multibyte = _non_ascii(text) - damaged
    if multibyte > damaged:  # mostly valid UTF-8 with non-ASCII text: a damaged UTF-8 file
        return _newlines(text)
    legacy = _legacy(data)
    if legacy is None:
        raise Unsupported("not UTF-8 text (invalid UTF-8, and not Latin-1 text either)")
    return _newlines(legacy)


def _legacy(data: bytes) -> str | None:
    """`data` as Windows-1252 (a superset of Latin-1's printable characters), if it reads
    as text: no control characters, mostly ASCII."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:  # bytes cp1252 leaves undefined: C1 controls, not text
        return None
    if _CONTROL.search(text) or _non_ascii(text) > LEGACY_MAX_NON_ASCII * len(text):
        return None
    return text


def _non_ascii(text: str) -> int:
    return len(text) - len(text.encode("ascii", "ignore"))


def _document(path: Path, source: str | None, text: str, title: str, sections=()) -> Document:
    if not text.strip():
        raise Unsupported("no text")
    title = " ".join(title.split()) or path.stem
    return Document(str(path) if source is None else source, text, title, tuple(sections))


def _heading_sections(text: str, heads: list[Heading]) -> tuple[Section, ...]:
    """One section per heading, up to the next heading, with its heading path."""
    if not heads:
        return ()
    sections = [Section(0, heads[0][0])] if text[: heads[0][0]].strip() else []
    stack: list[tuple[int, str]] = []
    for i, (start, level, title) in enumerate(heads):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        sections.append(Section(start, end, headings=tuple(t for _, t in stack)))
    return tuple(sections)


def _first_title(heads: list[Heading], level: int = 1) -> str:
    return next((title for _, lvl, title in heads if lvl == level), "")


def _join(blocks: list[str]) -> tuple[str, list[int]]:
    """Blocks joined by blank lines, and the offset where each starts."""
    starts, size = [], 0
    for block in blocks:
        starts.append(size)
        size += len(block) + 2
    return "\n\n".join(blocks), starts


# ---------------------------------------------------------------- text and markdown


def load_text(path: Path, source: str | None = None, data: bytes | None = None) -> Document:
    return _document(path, source, _decode(_read(path, data)), "")


_ATX = re.compile(r" {0,3}(#{1,6})(?=[ \t]|$)(.*)$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)$")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*$")
_PLAIN = re.compile(r" {0,3}(?![-*+>|#]|\d+[.)]|`{3}|~{3})\S")  # a line that can be a paragraph
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def _md_title(raw: str) -> str:
    raw = re.sub(r"(?:^|[ \t]+)#+[ \t]*$", "", raw.strip())
    raw = _LINK.sub(r"\1", raw).replace("`", "").replace("**", "").replace("__", "")
    return " ".join(raw.split())


def markdown_headings(text: str) -> list[Heading]:
    """ATX (`## x`) and setext (`x` over `===`) headings outside fenced code blocks."""
    heads: list[Heading] = []
    fence = ""  # the opening fence while inside a fenced code block
    offset, prev, prev_at = 0, "", 0  # prev: the line above, if it can be a setext title
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":  # YAML front matter holds no headings
        close = next((i for i, ln in enumerate(lines[1:], 1) if ln.strip() in ("---", "...")), 0)
        offset = sum(len(ln) + 1 for ln in lines[: close + 1]) if close else 0
        lines = lines[close + 1 :] if close else lines
    for line in lines:
        here, offset = offset, offset + len(line) + 1
        above, above_at, prev = prev, prev_at, ""
        f = _FENCE.match(line)
        if fence:  # inside a code block only its closing fence counts
            if f and f.group(1)[0] == fence[0] and len(f.group(1)) >= len(fence):
                fence = fence if f.group(2).strip() else ""
        elif f and not (f.group(1)[0] == "`" and "`" in f.group(2)):
            fence = f.group(1)
        elif (m := _ATX.match(line)) and (title := _md_title(m.group(2))):
            heads.append((here, len(m.group(1)), title))
        elif (m := _SETEXT.match(line)) and above and (title := _md_title(above)):
            heads.append((above_at, 1 if m.group(1)[0] == "=" else 2, title))
        elif _PLAIN.match(line):
            prev, prev_at = line, here
    return heads


def load_markdown(path: Path, source: str | None = None, data: bytes | None = None) -> Document:
    text = _decode(_read(path, data))
    heads = markdown_headings(text)
    return _document(path, source, text, _first_title(heads), _heading_sections(text, heads))


# ---------------------------------------------------------------- HTML

_DROP = frozenset(
    {"script", "style", "noscript", "template", "nav", "aside", "form", "svg", "iframe"}
    | {"object", "embed", "canvas", "audio", "video", "title", "meta", "link"}
    | {"select", "textarea", "input", "button"}
)
_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "search"})
_LINE = frozenset({"li", "dt", "dd", "tr", "caption", "figcaption", "summary", "legend"})
_PARA = frozenset(
    {"address", "article", "blockquote", "center", "details", "dialog", "div", "dl", "hr"}
    | {"fieldset", "figure", "footer", "header", "hgroup", "main", "menu", "ol", "ul", "p"}
    | {"pre", "section", "table", "tbody", "thead", "tfoot", "body", "html"}
)
_LEVELS = {f"h{n}": n for n in range(1, 7)}
_CELLS = ("td", "th")
_WS = re.compile(r"\s+")


def _dropped(tag) -> bool:
    """Invisible or navigational: dropped elements, hidden ones, site header and footer."""
    style = str(tag.get("style", "")).replace(" ", "").lower()
    return (
        tag.name in _DROP
        or tag.has_attr("hidden")
        or str(tag.get("aria-hidden", "")).strip().lower() == "true"
        or "display:none" in style
        or "visibility:hidden" in style
        or str(tag.get("role", "")).strip().lower() in _DROP_ROLES
        # a page-level header or footer is navigation; one inside an article is content
        or (
            tag.name in ("header", "footer") and not tag.find_parent(["article", "main", "section"])
        )
    )


class _TextBuilder:
    """Collapses whitespace and writes pending line (1) or paragraph (2) breaks lazily."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = self.pending = 0
        self.space = False
        self.heads: list[Heading] = []

    def brk(self, n: int) -> None:
        self.pending = max(self.pending, n)

    def write(self, s: str, pre: bool = False) -> int:
        """Append `s` (raw if `pre`); returns the offset where its text starts."""
        trailing = False
        if not pre:
            s = _WS.sub(" ", s)
            self.space |= s.startswith(" ")
            s, trailing = s.strip(" "), s.endswith(" ")
        if s:
            last = self.parts[-1] if self.parts else ""
            if not last:
                sep = ""
            elif self.pending:  # a <pre> may already have ended its line
                sep = "\n" * max(0, self.pending - len(last) + len(last.rstrip("\n")))
            else:
                sep = " " if self.space else ""
            self.parts += [sep, s]
            self.size += len(sep) + len(s)
            self.pending, self.space = 0, False
        self.space |= trailing
        return self.size - len(s)


def _html_walk(root, out: _TextBuilder) -> None:
    """Depth-first without recursion, so deeply nested pages cannot overflow the stack."""
    from bs4.element import NavigableString, PreformattedString, Tag

    stack: list[tuple[object, bool]] = [(root, False)]
    pre = cells = 0
    while stack:
        node, closing = stack.pop()
        if isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            text = str(node)
            if pre and node.parent.name == "pre" and node.previous_sibling is None:
                text = text.removeprefix("\n")  # as browsers do
            out.write(_newlines(text) if pre else text, pre=pre > 0)
        if not isinstance(node, Tag):
            continue
        name = node.name
        breaks = 2 if name in _PARA else 1 if name in _LINE else 0
        if closing:
            pre, cells = pre - (name == "pre"), cells - (name in _CELLS)
        elif name in _LEVELS:
            for br in node.find_all("br"):
                br.replace_with(" ")
            if title := " ".join(node.get_text().split()):
                out.brk(2)
                out.heads.append((out.write(title), _LEVELS[name], title))
                out.brk(2)
            continue
        elif name == "br":
            out.write("\n", pre=True) if pre else out.write(" ") if cells else out.brk(1)
            continue
        else:
            if name in _CELLS and node.find_previous_sibling(_CELLS):
                out.write(" | ")
            pre, cells = pre + (name == "pre"), cells + (name in _CELLS)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
        out.write(" ") if cells and breaks else out.brk(breaks)  # a table row stays one line


def load_html(path: Path, source: str | None = None, data: bytes | None = None) -> Document:
    from bs4 import BeautifulSoup

    data = _read(path, data)
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Unsupported("not an HTML file (binary data)")
    soup = BeautifulSoup(data, "lxml")  # decodes by BOM, declared charset, then UTF-8 guess
    title_tag = soup.head.find("title") if soup.head else soup.find("title")
    title = title_tag.get_text() if title_tag else ""
    for tag in soup.find_all(_dropped):
        if not tag.decomposed:
            tag.decompose()
    out = _TextBuilder()
    _html_walk(soup.body or soup, out)
    text = "".join(out.parts).rstrip()
    title = title.strip() or _first_title(out.heads)
    return _document(path, source, text, title, _heading_sections(text, out.heads))


# ---------------------------------------------------------------- PDF


def load_pdf(path: Path, source: str | None = None, data: bytes | None = None) -> Document:
    from pypdf import PdfReader

    data = _read(path, data)
    if b"%PDF" not in data[:1024]:
        raise Unsupported("not a PDF file")
    try:
        reader = PdfReader(io.BytesIO(data))
        # decrypting can fail for want of the `cryptography` package (AES)
        if reader.is_encrypted and not _try(lambda: reader.decrypt("")):
            raise Unsupported("encrypted PDF")
        pages = list(reader.pages)
    except Unsupported:
        raise
    except Exception as exc:
        raise Unsupported(_reason("corrupt PDF", exc)) from exc
    # one unreadable page does not lose the others
    texts = [_newlines(_try(page.extract_text) or "").replace("\x00", "").strip() for page in pages]
    numbered = [(number, text) for number, text in enumerate(texts, 1) if text]
    if not numbered:
        raise Unsupported("PDF has no extractable text (scanned?)")
    text, starts = _join([t for _, t in numbered])
    sections = [Section(s, s + len(t), page=n) for s, (n, t) in zip(starts, numbered, strict=True)]
    title = str(_try(lambda: reader.metadata.title) or "")
    return _document(path, source, text, title, sections)


# ---------------------------------------------------------------- DOCX

_HEADING_STYLE = re.compile(r"heading\s*([1-9])$", re.IGNORECASE)


def _docx_level(paragraph) -> int | None:
    """0 for the Title style, n for Heading n (or a style based on one), else None."""
    style = paragraph.style
    for _ in range(4):
        name = (style.name or "").strip() if style is not None else ""
        if name.lower() == "title":
            return 0
        if m := _HEADING_STYLE.match(name):
            return int(m.group(1))
        style = style.base_style if style is not None else None
    return None


def _docx_blocks(document) -> Iterator[tuple[str, int | None]]:
    """(text, heading level or None) for each paragraph and table, in document order."""
    from docx.table import Table

    for block in document.iter_inner_content():
        if not isinstance(block, Table):
            yield _newlines(block.text).strip(), _docx_level(block)
            continue
        rows = []
        for row in block.rows:
            cells = {cell._tc: cell for cell in row.cells}  # a merged cell is listed per column
            rows.append(" | ".join(t for c in cells.values() if (t := " ".join(c.text.split()))))
        yield "\n".join(row for row in rows if row), None


def load_docx(path: Path, source: str | None = None, data: bytes | None = None) -> Document:
    import docx

    data = _read(path, data)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise Unsupported("not a DOCX file (legacy .doc or encrypted)")
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = [(text, level) for text, level in _docx_blocks(document) if text]
        title = document.core_properties.title or ""
    except Exception as exc:
        raise Unsupported(_reason("corrupt DOCX", exc)) from exc
    text, starts = _join([b for b, _ in blocks])
    heads = [
        (s, lvl, " ".join(b.split()))
        for s, (b, lvl) in zip(starts, blocks, strict=True)
        if lvl is not None
    ]
    title = title.strip() or _first_title(heads, 0) or _first_title(heads, 1)
    return _document(path, source, text, title, _heading_sections(text, heads))


_LOADERS = {
    ".txt": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
}
