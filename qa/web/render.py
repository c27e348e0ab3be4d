"""HTML for the browser chat: the transcript, the sources panel and the document tables.

Pure functions of typed records, so they are easy to test. Every piece of text that comes
from a document, the model or the user goes through `esc` (HTML-escaped, quotes included);
the only markup in the output is the markup written here. A document therefore cannot
inject HTML or script into the page, whatever it contains.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from qa.errors import BadInput
from qa.records import Answer, Citation, DocumentInfo, Hit

CONTEXT_CHARS = 700  # at most this much passage text is shown on each side of a cited span
MARKER = re.compile(r"\[(\d{1,3})\]")

# Statuses of a chat turn.
STREAMING, ANSWERED, REFUSED, STOPPED, FAILED = (
    "streaming",
    "answered",
    "refused",
    "stopped",
    "error",
)


def esc(text: object) -> str:
    """`text` as HTML text or attribute value: & < > " ' all escaped."""
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class SourceView:
    """One cited passage as shown in the sources panel: the cited span (`quote`) with the
    passage text before and after it."""

    n: int
    source: str
    page: int | None
    before: str
    quote: str
    after: str
    start: int = 0
    end: int = 0
    located: str = ""  # where in the file, beyond a page: "slide 3", "sheet Sales, row 4"

    @property
    def where(self) -> str:
        """How the span is located: the locator's label, else "p. N", else ""."""
        return self.located or (f"p. {self.page}" if self.page is not None else "")

    @property
    def passage(self) -> str:
        return self.before + self.quote + self.after


@dataclass(frozen=True)
class ChatTurn:
    """One question and its answer as the chat shows it."""

    id: int
    question: str
    text: str = ""
    status: str = STREAMING
    sources: tuple[SourceView, ...] = ()
    answer: Answer | None = field(default=None, compare=False, repr=False)
    note: str = ""  # e.g. the error message, or timing/mode information


# --- building source views -------------------------------------------------------------


def _passage_bounds(c: Citation, passages: Sequence[Hit]) -> tuple[int, int]:
    for hit in passages:
        if hit.chunk_id is not None and hit.chunk_id == c.chunk_id:
            return min(hit.start, c.start), max(hit.end, c.end)
    for hit in passages:
        if hit.source == c.source and hit.start <= c.start and c.end <= hit.end:
            return hit.start, hit.end
    return c.start, c.end


def _trim_left(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    space = cut.find(" ")
    return "… " + (cut[space + 1 :] if 0 <= space < 40 else cut)


def _trim_right(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit - 40 else cut) + " …"


def source_views(answer: Answer, document_text: Callable[[str], str]) -> tuple[SourceView, ...]:
    """The cited passages of `answer`, each with its cited span, from the documents' text."""
    texts: dict[str, str] = {}
    views = []
    for c in answer.citations:
        if c.source not in texts:
            try:
                texts[c.source] = document_text(c.source)
            except BadInput:  # the document was removed since: show the quote alone
                texts[c.source] = ""
        text = texts[c.source]
        if text[c.start : c.end] != c.quote:  # the offsets no longer match the document
            views.append(
                SourceView(c.n, c.source, c.page, "", c.quote, "", c.start, c.end, _located(c))
            )
            continue
        start, end = _passage_bounds(c, answer.passages)
        before = _trim_left(text[start : c.start], CONTEXT_CHARS)
        after = _trim_right(text[c.end : end], CONTEXT_CHARS)
        views.append(
            SourceView(c.n, c.source, c.page, before, c.quote, after, c.start, c.end, _located(c))
        )
    return tuple(views)


def _located(c: Citation) -> str:
    """The citation's locator label when it says more than its page (PDFs show "p. N")."""
    locator = c.locator
    if locator is None or set(locator.to_dict()) <= {"page"}:
        return ""
    return locator.label()


# --- the transcript --------------------------------------------------------------------


def source_id(turn_id: int, n: int) -> str:
    return f"qa-src-{turn_id}-{n}"


def answer_html(text: str, turn_id: int, cited: Sequence[int]) -> str:
    """Escaped answer text with each `[n]` of a known citation turned into a footnote link."""
    known = set(cited)
    out, pos = [], 0
    for m in MARKER.finditer(text):
        n = int(m.group(1))
        if n not in known:
            continue
        out.append(esc(text[pos : m.start()]))
        target = source_id(turn_id, n)
        out.append(
            f'<a class="qa-cite" href="#{target}" data-target="{target}" '
            f'title="Show source {n}">[{n}]</a>'
        )
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def copy_text(turn: ChatTurn) -> str:
    """What "Copy" puts on the clipboard: the answer, then its sources."""
    lines = [turn.text.strip()]
    if turn.sources:
        lines.append("")
        lines.append("Sources:")
        for s in turn.sources:
            page = f", {s.where}" if s.where else ""
            quote = " ".join(s.quote.split())
            lines.append(f"[{s.n}] {s.source}{page}: “{quote}”")
    return "\n".join(lines)


_STATUS_LABEL = {
    STREAMING: "Answering…",
    ANSWERED: "",
    REFUSED: "Not found in the documents",
    STOPPED: "Stopped",
    FAILED: "Error",
}


def turn_html(turn: ChatTurn) -> str:
    q = f'<div class="qa-q"><div class="qa-bubble">{esc(turn.question)}</div></div>'
    cited = [s.n for s in turn.sources]
    if turn.status == STREAMING:
        body = esc(turn.text) + '<span class="qa-caret" aria-hidden="true"></span>'
    elif turn.status == FAILED:
        body = esc(turn.note or "Something went wrong.")
    else:
        short = turn.answer.short if turn.answer is not None else None
        lead = short.text if short is not None else ""
        if lead and turn.text.lower().startswith(lead.lower()):  # the direct answer, in bold
            n = len(lead)
            body = f"<b>{esc(turn.text[:n])}</b>" + answer_html(turn.text[n:], turn.id, cited)
        elif lead:  # a model's answer that does not open with it: the direct answer above
            body = f'<div class="qa-short"><b>{esc(lead)}</b></div>'
            body += answer_html(turn.text, turn.id, cited)
        else:
            body = answer_html(turn.text, turn.id, cited)
    label = _STATUS_LABEL.get(turn.status, "")
    badge = f'<div class="qa-badge">{esc(label)}</div>' if label else ""
    meta = []
    if turn.status in (ANSWERED, REFUSED, STOPPED) and turn.text:
        meta.append(
            f'<button class="qa-copy" type="button" data-copy="{esc(copy_text(turn))}">'
            "Copy</button>"
        )
    if turn.sources:
        n = len(turn.sources)
        meta.append(f'<span class="qa-nsrc">{n} source{"s" if n != 1 else ""}</span>')
    if turn.note and turn.status != FAILED:
        meta.append(f'<span class="qa-note">{esc(turn.note)}</span>')
    meta_html = f'<div class="qa-meta">{" · ".join(meta)}</div>' if meta else ""
    return (
        f'<div class="qa-turn" id="qa-turn-{turn.id}" data-status="{esc(turn.status)}">{q}'
        f'<div class="qa-a qa-{esc(turn.status)}">{badge}'
        f'<div class="qa-text">{body}</div>{meta_html}</div></div>'
    )


EMPTY_CHAT = (
    '<div class="qa-chat qa-chat-empty"><p>Ask a question about your documents. '
    "Answers cite the passages they rest on: click a <b>[1]</b> to see the exact words, "
    "highlighted in their passage.</p></div>"
)


def transcript_html(turns: Sequence[ChatTurn]) -> str:
    if not turns:
        return EMPTY_CHAT
    return '<div class="qa-chat">' + "".join(turn_html(t) for t in turns) + "</div>"


# --- the sources panel -----------------------------------------------------------------


def source_html(turn_id: int, s: SourceView) -> str:
    page = f' <span class="qa-src-page">{esc(s.where)}</span>' if s.where else ""
    return (
        f'<details class="qa-src" id="{source_id(turn_id, s.n)}">'
        f'<summary><span class="qa-src-n">[{s.n}]</span> '
        f'<span class="qa-src-name">{esc(s.source)}</span>{page}</summary>'
        f'<div class="qa-passage">{esc(s.before)}<mark class="qa-hl">{esc(s.quote)}</mark>'
        f"{esc(s.after)}</div></details>"
    )


def sources_html(turns: Sequence[ChatTurn]) -> str:
    """Every answer's cited passages, newest answer first."""
    parts = ['<div class="qa-sources"><div class="qa-panel-title">Sources</div>']
    shown = False
    for turn in reversed(turns):
        if turn.status == STREAMING:
            continue
        if not turn.sources:
            if turn.status == REFUSED:
                parts.append(
                    f'<section class="qa-src-turn"><div class="qa-src-q">{esc(turn.question)}'
                    '</div><div class="qa-src-none">No passage answers this question; '
                    "nothing is cited.</div></section>"
                )
                shown = True
            continue
        items = "".join(source_html(turn.id, s) for s in turn.sources)
        parts.append(
            f'<section class="qa-src-turn" data-turn="{turn.id}">'
            f'<div class="qa-src-q">{esc(turn.question)}</div>{items}</section>'
        )
        shown = True
    if not shown:
        parts.append('<div class="qa-src-none">Cited passages appear here.</div>')
    parts.append("</div>")
    return "".join(parts)


# --- documents -------------------------------------------------------------------------


@dataclass(frozen=True)
class FileResult:
    """What happened to one uploaded file."""

    name: str
    outcome: str  # indexed, updated, unchanged, skipped, refused, failed
    detail: str = ""


def documents_html(docs: Sequence[DocumentInfo]) -> str:
    if not docs:
        return '<div class="qa-docs qa-empty-list">No documents indexed yet: upload some.</div>'
    rows = "".join(
        f"<tr><td>{esc(d.source)}</td><td>{esc(d.title)}</td>"
        f'<td class="qa-num">{d.chunks}</td><td class="qa-num">{_size(d.size)}</td></tr>'
        for d in docs
    )
    total = sum(d.chunks for d in docs)
    return (
        f'<div class="qa-docs"><table><thead><tr><th>Document</th><th>Title</th>'
        f'<th class="qa-num">Chunks</th><th class="qa-num">Size</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        f'<div class="qa-docs-total">{len(docs)} document{"s" if len(docs) != 1 else ""}, '
        f"{total} chunks</div></div>"
    )


def report_html(results: Sequence[FileResult], summary: str = "") -> str:
    if not results and not summary:
        return ""
    rows = "".join(
        f'<tr class="qa-r-{esc(r.outcome)}"><td>{esc(r.name)}</td>'
        f'<td class="qa-outcome">{esc(r.outcome)}</td><td>{esc(r.detail)}</td></tr>'
        for r in results
    )
    table = (
        "<table><thead><tr><th>File</th><th>Result</th><th>Details</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if results
        else ""
    )
    head = f'<div class="qa-report-summary">{esc(summary)}</div>' if summary else ""
    return f'<div class="qa-report">{head}{table}</div>'


def formats_html(groups, note: str = "") -> str:
    """The accepted formats, a kind a row ("Spreadsheets | Excel .xlsx · CSV .csv · …"),
    from `groups` as `qa.web.files.FORMAT_GROUPS`, and a note under them."""
    rows = "".join(
        f'<tr><th scope="row">{esc(kind)}</th><td>'
        + " · ".join(
            f"{esc(name)} <code>{esc(' '.join(suffixes.split()))}</code>"
            for name, suffixes in formats
        )
        + "</td></tr>"
        for kind, formats in groups
    )
    tail = f'<div class="qa-formats-note">{esc(note)}</div>' if note else ""
    return (
        '<div class="qa-formats"><div class="qa-formats-head">Formats you can add</div>'
        f"<table><tbody>{rows}</tbody></table>{tail}</div>"
    )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"
