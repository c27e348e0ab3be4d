"""Conversation turns, and rewriting a follow-up question into a standalone query.

A 135M-parameter model rewrites follow-ups unreliably, so this is a heuristic that is easy to
predict: a question is a follow-up when it leans on the previous turn (a leading "and" / "what
about", a pronoun such as "it" or "they", a closing "that" as in "When was that?", or too little
of its own: no content word, or a single one with neither a name nor a verb beside it, as in
"What year?"). A question with its own subject ("Who is Ford?", "What is photosynthesis?") is
standalone even when it is short. A follow-up's pronoun is replaced by the topic of the previous
question (that question's last noun phrase), a bare "what about X?" reuses the previous question
with X in place of its subject, and key terms of the previous question that are still missing
are added, so retrieval sees a full query.

The user's words are inserted into the query literally (function replacements, never a
replacement template), so "What about C:\\data?" or "\\1" are text, not regex syntax.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.text import STOPWORDS, stem, terms, words


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation. `query` is the standalone question it was
    answered as (defaults to `question`). `qa.Answer` objects can be passed as turns too."""

    question: str
    answer: str = ""
    query: str = ""

    @property
    def standalone(self) -> str:
        return self.query or self.question


# Not stopwords but the words that point back at the previous turn: what makes a follow-up.
THING_PRONOUNS = frozenset("it its it's this these those".split())
PERSON_PRONOUNS = frozenset("they them their theirs he him his she her hers".split())
PRONOUNS = THING_PRONOUNS | PERSON_PRONOUNS
_LEADING = re.compile(
    r"^\s*(?:and|also|so|but|then|ok(?:ay)?|well)\b[\s,]*|^\s*(?:what|how)\s+about\b[\s,]*",
    re.IGNORECASE,
)
_WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(.+?)\s*\??\s*$", re.IGNORECASE)
_BARE_AND = re.compile(r"^\s*and\s+(.+?)\s*\??\s*$", re.IGNORECASE)
# Where a noun phrase starts ("... deny [the Xiaomi report]"): the topic is cut there.
_DETERMINERS = frozenset("the a an this that these those his her its their our my your".split())
# The words that open a question (auxiliaries and wh-words): "and did ..." goes on the previous
# question, "and Xiaomi?" names a new subject; an auxiliary also marks a question with a verb.
_AUXILIARIES = frozenset(
    "do does did is are was were has have had can could will would should".split()
)
_AUX = _AUXILIARIES | frozenset("who what when where which why how".split())


def previous_query(history: Sequence) -> str | None:
    """The standalone question of the last turn in `history` (Turn, Answer or (q, a) pairs)."""
    if not history:
        return None
    last = history[-1]
    if isinstance(last, Turn):
        return last.standalone
    query = getattr(last, "query", None) or getattr(last, "question", None)
    if query:
        return str(query)
    if isinstance(last, (tuple, list)) and last:
        return str(last[0])
    if isinstance(last, str):
        return last
    return None


def is_followup(question: str) -> bool:
    """Whether `question` leans on the previous turn (see the module docstring)."""
    ws = [w.lower() for w in words(question)]
    if not ws:
        return False
    if _LEADING.match(question):
        return True
    if any(w in PRONOUNS for w in ws) or ws[-1] == "that":
        return True
    own = terms(question)
    if not own:
        return True  # "Why?", "Who said so?"
    if len(own) > 1 or _names(question):
        return False
    # one content word: a subject when a verb goes with it ("What is photosynthesis?"),
    # a fragment leaning on the previous question otherwise ("What year?", "Which country?")
    return not any(w in _AUXILIARIES for w in ws)


def _names(question: str) -> list[str]:
    """Names and numbers of the question: capitalised words after its first, words with
    digits ("Who is Ford?" -> ["Ford"])."""
    ws = words(question)
    return [
        w
        for i, w in enumerate(ws)
        if any(ch.isdigit() for ch in w) or (i > 0 and w[:1].isupper() and w.lower() != "i")
    ]


def topic_phrase(question: str) -> str:
    """The last noun phrase of a question: its trailing run of words after a verb/aux,
    e.g. "Did Ford deny the Xiaomi report?" -> "the Xiaomi report"."""
    ws = words(question.rstrip(" ?.!"))
    run: list[str] = []
    for w in reversed(ws):
        lw = w.lower()
        if lw in _DETERMINERS:
            run.append(w)
            break
        if lw in STOPWORDS or lw in _AUX or (run and _looks_verb(lw)):
            break
        run.append(w)
    return " ".join(reversed(run))


def _looks_verb(word: str) -> bool:
    return word.endswith(("ed", "ing")) or word in {"deny", "say", "make", "do", "go", "have"}


def _subject(question: str) -> str | None:
    """The first capitalised word after the opening auxiliary ("Did Ford ..." -> "Ford")."""
    ws = words(question)
    for w in ws[1:]:
        if w[:1].isupper():
            return w
    return None


def _replace(pattern: str, text: str, into: str) -> str:
    """`into` with the first match of `pattern` (case-insensitive) replaced by `text`
    literally: `text` comes from the user, and as a `re.sub` template a backslash in it
    ("C:\\data") is an escape or a group reference."""
    return re.sub(pattern, lambda _: text, into, count=1, flags=re.IGNORECASE)


def rewrite(question: str, history: Sequence | None) -> str:
    """A standalone version of `question` given the conversation so far (unchanged if it
    does not look like a follow-up or there is no history)."""
    prev = previous_query(history or [])
    question = question.strip()
    if not prev or not is_followup(question):
        return question
    m = _WHAT_ABOUT.match(question) or (
        _BARE_AND.match(question) if len(terms(question)) <= 3 and "?" in question else None
    )
    if m and not any(w.lower() in _AUX for w in words(m.group(1))[:1]):
        new = m.group(1).strip()
        subject = _subject(prev)
        if subject and subject.lower() not in new.lower():
            return _replace(rf"\b{re.escape(subject)}\b", new, prev)
        return f"{prev.rstrip(' ?')} {new}?"
    body = _LEADING.sub("", question, count=1).strip()
    body = body[:1].upper() + body[1:]
    topic = topic_phrase(prev)
    have = set(terms(body))
    subject = _subject(prev)
    if subject and subject.lower() not in body.lower():
        body = _replace(r"\b(they|he|she)\b", subject, body)
        body = _replace(r"\b(them|him)\b", subject, body)
        body = _replace(r"\b(their|his)\b", subject + "'s", body)
    if topic and not set(terms(topic)) <= set(terms(body)):
        body = _replace(r"\b(it|this|these|those)\b(?!['’])", topic, body)
    have = set(terms(body))
    missing = []
    for w in words(prev):
        t = stem(w.lower())
        if w.lower() not in STOPWORDS and t not in have and w.lower() not in _AUX:
            missing.append(w)
            have.add(t)
    if missing:
        body = f"{body.rstrip(' ?')} ({' '.join(missing)})?"
    return body
