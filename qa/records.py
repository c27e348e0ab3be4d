"""Typed, immutable records passed between the parts of `qa`.

Offsets are always character offsets into `Document.text`, the exact text that
was indexed, so `document.text[start:end] == chunk.text` holds for every chunk.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, fields, replace

_LOCATOR_KEYS = ("page", "slide", "sheet", "row", "row_end", "chapter", "message")


@dataclass(frozen=True)
class Locator:
    """Where a span is in its file, beyond character offsets: a PDF or image `page`, a
    `slide`, a spreadsheet `sheet` and `row` (as the spreadsheet numbers them; a CSV's header
    is row 1), an e-book `chapter` or a mail `message` (numbers from 1). `row_end`: the last
    row when a span covers several; rows are then separated by blank lines in the text."""

    page: int | None = None
    slide: int | None = None
    sheet: str | None = None
    row: int | None = None
    row_end: int | None = None
    chapter: int | None = None
    message: int | None = None

    def label(self) -> str:
        """'page 3', 'slide 2', 'sheet Sales, row 4', 'rows 4-6', 'chapter 2', 'message 1'."""
        parts = []
        for name in ("page", "slide", "chapter", "message"):
            if (value := getattr(self, name)) is not None:
                parts.append(f"{name} {value}")
        if self.sheet is not None:
            parts.append(f"sheet {self.sheet}")
        if self.row is not None:
            last = self.row_end if self.row_end is not None else self.row
            parts.append(f"row {self.row}" if last == self.row else f"rows {self.row}-{last}")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        """The fields that are set, e.g. {"sheet": "Sales", "row": 4}."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    @classmethod
    def from_dict(cls, data: dict | None) -> Locator | None:
        if not isinstance(data, dict):
            return None
        known = {k: data[k] for k in _LOCATOR_KEYS if data.get(k) is not None}
        return cls(**known) if known else None

    def through(self, last: Locator) -> Locator:
        """This locator extended to the rows of `last` (a span over several rows)."""
        end = last.row_end if last.row_end is not None else last.row
        if self.row is None or end is None or end == self.row:
            return self
        return replace(self, row_end=end)

    def narrowed(self, before: str, through: str) -> Locator:
        """The locator of a part of a span over several rows, given the span's text before the
        part and up to its end: rows are counted by the blank lines between them."""
        if self.row is None or self.row_end is None:
            return self
        first = self.row + before.count("\n\n")
        last = min(self.row + through.count("\n\n"), self.row_end)
        return replace(self, row=first, row_end=last if last > first else None)


def locator_label(locator: Locator | None, page: int | None = None) -> str:
    """How a span is located for people: the locator's label, else 'page N', else ''."""
    if locator is not None and (text := locator.label()):
        return text
    return f"page {page}" if page is not None else ""


@dataclass(frozen=True)
class Section:
    """A span of a document's text that shares a page (or another locator) and a heading
    path. `locator` says where it is in the file; a PDF page has `page` and `locator` both."""

    start: int
    end: int
    page: int | None = None
    headings: tuple[str, ...] = ()
    locator: Locator | None = None


@dataclass(frozen=True)
class Document:
    """A loaded source file: its text, and where pages and headings begin."""

    source: str
    text: str
    title: str = ""
    sections: tuple[Section, ...] = ()

    def section_at(self, offset: int) -> Section | None:
        """The section containing `offset` (sections are sorted by start)."""
        if not self.sections:
            return None
        starts = [s.start for s in self.sections]
        i = bisect.bisect_right(starts, offset) - 1
        return self.sections[max(i, 0)]


@dataclass(frozen=True)
class Chunk:
    """A passage of a document, sized for the embedder."""

    source: str
    text: str
    start: int
    end: int
    ordinal: int = 0
    page: int | None = None
    headings: tuple[str, ...] = ()
    locator: Locator | None = None


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the retrievers that found it."""

    chunk_id: int
    source: str
    text: str
    start: int
    end: int
    score: float
    page: int | None = None
    headings: tuple[str, ...] = ()
    retrievers: tuple[str, ...] = ()
    locator: Locator | None = None

    def to_dict(self) -> dict:
        return {
            "chunk_id": self.chunk_id,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "page": self.page,
            "locator": self.locator.to_dict() if self.locator is not None else None,
            "headings": list(self.headings),
            "text": self.text,
            "score": self.score,
            "retrievers": list(self.retrievers),
        }


@dataclass(frozen=True)
class DocumentInfo:
    """What the index knows about one indexed document."""

    source: str
    sha256: str
    title: str
    mtime: float
    size: int
    chunks: int


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed. `failed`: it looked like a document but could not be read
    (as opposed to a file type qa does not index, which is simply ignored)."""

    source: str
    reason: str
    failed: bool = False


@dataclass(frozen=True)
class FileWarning:
    """Part of an indexed file that could not be read (e.g. a PDF page that failed)."""

    source: str
    message: str


@dataclass(frozen=True)
class IndexReport:
    """The outcome of one indexing run. `warnings`: files indexed with parts missing."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    chunks_embedded: int = 0
    seconds: float = 0.0
    warnings: tuple[FileWarning, ...] = ()

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.removed)} removed, {len(self.unchanged)} unchanged, "
            f"{len(self.skipped)} skipped; {self.chunks_embedded} chunks embedded "
            f"in {self.seconds:.1f}s"
        )


@dataclass(frozen=True)
class Citation:
    """A verified pointer from an answer to an exact span of a source document."""

    n: int
    source: str
    start: int
    end: int
    quote: str
    page: int | None = None
    chunk_id: int | None = None
    support: float = 0.0
    locator: Locator | None = None

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "page": self.page,
            "locator": self.locator.to_dict() if self.locator is not None else None,
            "quote": self.quote,
        }

    def located_in(self, hit: Hit) -> Citation:
        """This citation with the locator of the passage it quotes (narrowed to its rows)."""
        if self.locator is not None or hit.locator is None or hit.chunk_id != self.chunk_id:
            return self
        a = min(max(self.start - hit.start, 0), len(hit.text))
        b = min(max(self.end - hit.start, a), len(hit.text))
        return replace(self, locator=hit.locator.narrowed(hit.text[:a], hit.text[:b]))


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer and whether the cited passages support it."""

    text: str
    citations: tuple[int, ...] = ()
    supported: bool = False
    support: float = 0.0


@dataclass(frozen=True)
class ShortAnswer:
    """The direct answer that leads an `Answer`: a short span of a cited sentence ("The
    Financial Times"), or "Yes" / "No" when the cited sentence settles a yes/no question.
    A span's `start`/`end` are exact offsets in `source`'s text; for yes/no they are the
    cited sentence's."""

    text: str
    kind: str  # "span", "yes" or "no"
    source: str
    start: int
    end: int
    citation: int  # the number of the citation it rests on
    score: float = 0.0  # the reader's probability for it

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "kind": self.kind,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "citation": self.citation,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class Answer:
    """The result of `qa.ask`: the answer text, verified citations, and how it was made.
    `short` is the direct answer the text leads with (None when there is none, or refused)."""

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    refused: bool = False
    query: str = ""
    mode: str = "llm"
    claims: tuple[Claim, ...] = ()
    passages: tuple[Hit, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    short: ShortAnswer | None = None

    def __post_init__(self) -> None:
        # each citation gets the locator of the passage it quotes (the answer pipeline
        # builds citations from sentences, which know their chunk but not its locator)
        by_chunk = {h.chunk_id: h for h in self.passages if h.locator is not None}
        if by_chunk and any(c.locator is None for c in self.citations):
            located = tuple(
                c.located_in(by_chunk[c.chunk_id]) if c.chunk_id in by_chunk else c
                for c in self.citations
            )
            object.__setattr__(self, "citations", located)

    def to_dict(self) -> dict:
        return {
            "answer": self.text,
            "short": self.short.to_dict() if self.short is not None else None,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "query": self.query,
            "mode": self.mode,
            "claims": [
                {"text": c.text, "citations": list(c.citations), "supported": c.supported}
                for c in self.claims
            ],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


@dataclass(frozen=True)
class IndexStatus:
    """What `qa doctor` checks of an index: its counts agree, and which embedder made it."""

    documents: int
    chunks: int
    vectors: int
    embedder: str
    database: str
