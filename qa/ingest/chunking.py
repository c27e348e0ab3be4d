"""Pure functions: Document -> Chunks with exact character offsets.

Chunks are built from whole sentences, sized in the embedder's own tokens, and never
longer than the embedder can read (sentence-transformers silently truncates longer
input). A chunk never crosses a section boundary (a PDF page, a slide, a heading), so its
page, locator and heading path are exact; the one exception is consecutive rows of one sheet
(sections located by row, separated by blank lines), which are packed together and located
by their row range. Invariant: `document.text[c.start:c.end] == c.text`.

Hand-written on purpose: text splitters (langchain-text-splitters, semantic-text-splitter) do not
promise exact offsets, the embedder's own token bound and section limits together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qa.ingest.sentences import split_sentences
from qa.records import Chunk, Document, Locator, Section

__all__ = ["chunk_document", "split_sentences"]

TokenSpans = Callable[[Sequence[str]], list[list[tuple[int, int]]]]


def _rows_of_one_sheet(a: Section, b: Section) -> bool:
    """Whether `b` is the row after `a` in the same sheet, under the same headings."""
    la, lb = a.locator, b.locator
    return (
        la is not None
        and lb is not None
        and la.row is not None
        and lb.row is not None
        and la.sheet == lb.sheet
        and a.headings == b.headings
        and a.page == b.page
    )


def _regions(doc: Document) -> list[list[Section]]:
    """The regions chunks are packed in: each section alone, except runs of rows of one sheet
    (a region is the list of its sections, in order)."""
    if not doc.sections:
        return [[Section(0, len(doc.text))]]
    regions: list[list[Section]] = []
    for section in doc.sections:
        if regions and _rows_of_one_sheet(regions[-1][-1], section):
            regions[-1].append(section)
        else:
            regions.append([section])
    return regions


def _locator(members: list[Section], start: int, end: int) -> Locator | None:
    """The locator of the span [start, end) of a region: its section's, or for rows the
    range from the first row it touches to the last."""
    if len(members) == 1:
        return members[0].locator
    inside = [s for s in members if s.start < end and s.end > start] or members[:1]
    first, last = inside[0].locator, inside[-1].locator
    return first.through(last) if first is not None and last is not None else first


def chunk_document(
    doc: Document,
    token_spans: TokenSpans,
    max_tokens: int,
    overlap: int = 0,
) -> list[Chunk]:
    """Pack whole sentences into chunks of at most `max_tokens` tokens.

    Consecutive chunks of a section share up to `overlap` tokens of whole sentences.
    A sentence longer than `max_tokens` is cut at word boundaries.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be positive")
    overlap = max(0, min(overlap, max_tokens - 1))
    chunks: list[Chunk] = []
    for members in _regions(doc):
        region = members[0]
        if len(members) > 1:
            region = Section(members[0].start, members[-1].end, region.page, region.headings)
        units = _units(doc.text, region, token_spans, max_tokens)
        for a, b in _pack(units, max_tokens, overlap):
            start, end = units[a][0], units[b - 1][1]
            chunks.append(
                Chunk(
                    source=doc.source,
                    text=doc.text[start:end],
                    start=start,
                    end=end,
                    ordinal=len(chunks),
                    page=region.page,
                    headings=region.headings,
                    locator=_locator(members, start, end),
                )
            )
    return _enforce_limit(doc, chunks, token_spans, max_tokens)


def _units(
    text: str, region: Section, token_spans: TokenSpans, max_tokens: int
) -> list[tuple[int, int, int]]:
    """Sentences of a region as (start, end, tokens); over-long ones cut into pieces."""
    sentences = split_sentences(text, region.start, region.end)
    if not sentences:
        return []
    spans = token_spans([text[a:b] for a, b in sentences])
    units: list[tuple[int, int, int]] = []
    for (a, b), toks in zip(sentences, spans, strict=True):
        if len(toks) <= max_tokens:
            units.append((a, b, len(toks)))
        else:
            units.extend(_cut(text, a, toks, max_tokens))
    return units


def _cut(
    text: str, base: int, toks: list[tuple[int, int]], max_tokens: int
) -> list[tuple[int, int, int]]:
    """Cut one long sentence into pieces of at most `max_tokens`, at word starts if possible."""
    pieces = []
    i = 0
    while i < len(toks):
        j = min(i + max_tokens, len(toks))
        if j < len(toks):
            # back off to a token that starts a word, so no word is split in two
            k = j
            while k > i + 1 and not _starts_word(text, base + toks[k][0]):
                k -= 1
            if k > i + 1:
                j = k
        a, b = base + toks[i][0], base + toks[j - 1][1]
        pieces.append((a, b, j - i))
        i = j
    return pieces


def _starts_word(text: str, pos: int) -> bool:
    return pos == 0 or text[pos - 1].isspace() or not text[pos - 1].isalnum()


def _pack(units: list[tuple[int, int, int]], max_tokens: int, overlap: int):
    """Yield [a, b) unit ranges: greedy packing with sentence overlap."""
    a = 0
    n = len(units)
    while a < n:
        b, total = a, 0
        while b < n and (b == a or total + units[b][2] <= max_tokens):
            total += units[b][2]
            b += 1
        yield a, b
        if b >= n:
            return
        # next chunk starts with the trailing sentences that fit in `overlap`
        nxt, carried = b, 0
        while nxt - 1 > a and carried + units[nxt - 1][2] <= overlap:
            nxt -= 1
            carried += units[nxt][2]
        if carried + units[b][2] > max_tokens:
            nxt = b
        a = nxt


def _enforce_limit(
    doc: Document, chunks: list[Chunk], token_spans: TokenSpans, max_tokens: int
) -> list[Chunk]:
    """Tokenize each chunk as the embedder will, and cut any that is still too long."""
    if not chunks:
        return chunks
    counts = token_spans([c.text for c in chunks])
    if all(len(t) <= max_tokens for t in counts):
        return chunks
    out: list[Chunk] = []
    for chunk, toks in zip(chunks, counts, strict=True):
        if len(toks) <= max_tokens:
            out.append(chunk)
            continue
        limit = max_tokens
        while True:  # word-boundary pieces can tokenize longer alone; shrink until they fit
            pieces = _cut(doc.text, chunk.start, toks, limit)
            texts = [doc.text[a:b] for a, b, _ in pieces]
            if all(len(t) <= max_tokens for t in token_spans(texts)) or limit == 1:
                break
            limit = max(1, limit - max(1, limit // 8))
        for a, b, _ in pieces:
            locator = chunk.locator
            if locator is not None:  # a piece of a span over several rows: its own rows
                base = chunk.start
                locator = locator.narrowed(doc.text[base:a], doc.text[base:b])
            out.append(
                Chunk(chunk.source, doc.text[a:b], a, b, 0, chunk.page, chunk.headings, locator)
            )
    return [
        Chunk(c.source, c.text, c.start, c.end, i, c.page, c.headings, c.locator)
        for i, c in enumerate(out)
    ]
