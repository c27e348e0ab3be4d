"""What every format loader shares: the `Unsupported` error, reading the bytes, and building
a `Document` with its heading sections.

Text is stored with "\\n" newlines only, so offsets are the same whatever the source used.
Hand-written on purpose: a few lines each, about qa's own `Document` and `Section` offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qa.records import Document, Section

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
