"""Typed, immutable records passed between the parts of `qa`.

Offsets are always character offsets into `Document.text`, the exact text that
was indexed, so `document.text[start:end] == chunk.text` holds for every chunk.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    """A span of a document's text that shares a page and a heading path."""

    start: int
    end: int
    page: int | None = None
    headings: tuple[str, ...] = ()


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

    def to_dict(self) -> dict:
        return {
            "chunk_id": self.chunk_id,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "page": self.page,
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

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "page": self.page,
            "quote": self.quote,
        }


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
