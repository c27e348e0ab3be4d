"""What every format loader shares: the `Unsupported` error, reading the bytes, and building
a `Document` with its heading sections.

Text is stored with "\\n" newlines only, so offsets are the same whatever the source used.
Hand-written on purpose: a few lines each, about qa's own `Document` and `Section` offsets.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from qa.records import Document, Locator, Section

Heading = tuple[int, int, str]  # (offset, level, title)


class Unsupported(Exception):
    """A file that is not a supported, readable document; str(exc) is a one-line reason."""


@dataclass(frozen=True)
class LoadedDocument(Document):
    """A `Document` as a loader made it. `warnings`: one-line notes on parts that could not
    be read while the rest was kept (e.g. "2 of 9 pages failed to extract: ...")."""

    warnings: tuple[str, ...] = ()


def one_line(exc: BaseException, limit: int = 120) -> str:
    """An exception's message on one line, at most `limit` characters, or its type's name."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


def reason(prefix: str, exc: BaseException) -> str:
    return f"{prefix}: {one_line(exc)}"


def try_(fn, default=None):
    """fn(), or `default` if it raises."""
    try:
        return fn()
    except Exception:
        return default


def read(path: Path, data: bytes | None = None) -> bytes:
    """The file's bytes (or `data`, if the caller has read them); empty files are refused."""
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


def newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def document(
    path: Path,
    source: str | None,
    text: str,
    title: str,
    sections=(),
    warnings: tuple[str, ...] = (),
) -> LoadedDocument:
    if not text.strip():
        raise Unsupported("no text")
    title = " ".join(title.split()) or path.stem
    source = str(path) if source is None else source
    return LoadedDocument(source, text, title, tuple(sections), warnings)


def heading_sections(text: str, heads: list[Heading]) -> tuple[Section, ...]:
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


def first_title(heads: list[Heading], level: int = 1) -> str:
    return next((title for _, lvl, title in heads if lvl == level), "")


def join(blocks: list[str]) -> tuple[str, list[int]]:
    """Blocks joined by blank lines, and the offset where each starts."""
    starts, size = [], 0
    for block in blocks:
        starts.append(size)
        size += len(block) + 2
    return "\n\n".join(blocks), starts


def block_document(
    path: Path,
    source: str | None,
    blocks: list[tuple[str, int | None]],
    title: str = "",
    title_levels: tuple[int, ...] = (1,),
) -> LoadedDocument:
    """A document of (text, heading level or None) blocks in reading order, joined by blank
    lines, with a section per heading; titled `title`, else by its first heading of the first
    of `title_levels` that has one (DOCX: Title, then Heading 1)."""
    text, starts = join([b for b, _ in blocks])
    heads = [
        (s, lvl, " ".join(b.split()))
        for s, (b, lvl) in zip(starts, blocks, strict=True)
        if lvl is not None
    ]
    title = title.strip() or next(
        (found for level in title_levels if (found := first_title(heads, level))), ""
    )
    return document(path, source, text, title, heading_sections(text, heads))


@dataclass(frozen=True)
class Part:
    """A piece of a document located as a whole (a slide, a row, a chapter, a message), with
    the heading path it sits under and the headings inside it ((offset, level, title) into
    `text`)."""

    text: str
    locator: Locator | None = None
    headings: tuple[str, ...] = ()
    heads: list[Heading] = field(default_factory=list)


def parts_document(
    path: Path,
    source: str | None,
    parts: list[Part],
    title: str,
    warnings: tuple[str, ...] = (),
) -> LoadedDocument:
    """A document of `parts` joined by blank lines, one section per part (or per heading
    inside a part), each with the part's locator; a locator's `page` is the section's too."""
    parts = [p for p in parts if p.text.strip()]
    text, starts = join([p.text for p in parts])
    sections: list[Section] = []
    for start, part in zip(starts, parts, strict=True):
        page = part.locator.page if part.locator is not None else None
        inner = heading_sections(part.text, part.heads) or (Section(0, len(part.text)),)
        for s in inner:
            sections.append(
                Section(
                    start + s.start,
                    start + s.end,
                    page=page,
                    headings=part.headings + s.headings,
                    locator=part.locator,
                )
            )
    return document(path, source, text, title, sections, warnings)


# Zip containers (pptx, xlsx, epub, odt): limits against zip bombs, on the sizes the archive
# declares (zipfile never unzips a member past its declared size).
MAX_UNZIPPED = 1_000_000_000  # bytes, all members together
MAX_RATIO = 100  # a member unzipping to more than 10 MB at more than 100 times its size
_BIG_MEMBER = 10_000_000


def open_zip(data: bytes, kind: str) -> zipfile.ZipFile:
    """The zip archive a `kind` file (e.g. "PPTX") is, checked: not an encrypted or legacy
    binary file, not corrupt, not a zip bomb. Raises `Unsupported` with the reason."""
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise Unsupported(f"not a {kind} file (password-protected, or an old binary format)")
    if not data.startswith(b"PK"):
        raise Unsupported(f"not a {kind} file (not a zip archive)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as exc:
        raise Unsupported(reason(f"corrupt {kind}", exc)) from exc
    total = 0
    for info in members:
        total += info.file_size
        if info.flag_bits & 0x1:
            raise Unsupported(f"encrypted {kind}: {info.filename} needs a password")
        if info.file_size > _BIG_MEMBER and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise Unsupported(
                f"{kind} refused as a likely zip bomb: {info.filename} unzips from "
                f"{info.compress_size:,} to {info.file_size:,} bytes"
            )
    if total > MAX_UNZIPPED:
        raise Unsupported(
            f"{kind} refused: it unzips to {total:,} bytes, over the {MAX_UNZIPPED:,} limit"
        )
    return archive
