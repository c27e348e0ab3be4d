"""Pure functions: Document -> Chunks with exact character offsets.

Chunks are built from whole sentences, sized in the embedder's own tokens, and never
longer than the embedder can read (sentence-transformers silently truncates longer
input). A chunk never crosses a section boundary (a PDF page, a heading), so its page
and heading path are exact. Invariant: `document.text[c.start:c.end] == c.text`.

Hand-written on purpose: text splitters (langchain-text-splitters, semantic-text-splitter) do not
promise exact offsets, the embedder's own token bound and section limits together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qa.ingest.sentences import split_sentences
from qa.records import Chunk, Document, Section

__all__ = ["chunk_document", "split_sentences"]

TokenSpans = Callable[[Sequence[str]], list[list[tuple[int, int]]]]


def _regions(doc: Document) -> list[Section]:
    if doc.sections:
        return list(doc.sections)
    return [Section(0, len(doc.text))]


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
    for region in _regions(doc):
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
            out.append(Chunk(chunk.source, doc.text[a:b], a, b, 0, chunk.page, chunk.headings))
    return [
        Chunk(c.source, c.text, c.start, c.end, i, c.page, c.headings) for i, c in enumerate(out)
    ]
