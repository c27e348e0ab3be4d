"""Conversation turns, and rewriting a follow-up question into a standalone query.

A 135M-parameter model rewrites follow-ups unreliably, so this is a heuristic that is easy to
predict: a question is a follow-up when it leans on the previous turn (a leading "and" / "what
about", a pronoun such as "it" or "they", or too few content words of its own). Its pronoun is
replaced by the topic of the previous question (that question's last noun phrase), a bare
"what about X?" reuses the previous question with X in place of its subject, and key terms of
the previous question that are still missing are added, so retrieval sees a full query.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.answer.evidence import STOPWORDS, stem, terms, words


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


THING_PRONOUNS = frozenset("it its it's this these those".split())
PERSON_PRONOUNS = frozenset("they them their theirs he him his she her hers".split())
PRONOUNS = THING_PRONOUNS | PERSON_PRONOUNS
_LEADING = re.compile(
    r"^\s*(?:and|also|so|but|then|ok(?:ay)?|well)\b[\s,]*|^\s*(?:what|how)\s+about\b[\s,]*",
    re.IGNORECASE,
)
_WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(.+?)\s*\??\s*$", re.IGNORECASE)
_BARE_AND = re.compile(r"^\s*and\s+(.+?)\s*\??\s*$", re.IGNORECASE)
_DETERMINERS = frozenset("the a an this that these those his her its their our my your".split())
_AUX = frozenset(
    "do does did is are was were has have had can could will would should who what when where "
    "which why how".split()
)


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
    ws = [w.lower() for w in words(question)]
    if not ws:
        return False
    if _LEADING.match(question):
        return True
    if any(w in PRONOUNS for w in ws):
        return True
    return len(terms(question)) <= 1


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
            return re.sub(rf"\b{re.escape(subject)}\b", new, prev, count=1)
        return f"{prev.rstrip(' ?')} {new}?"
    body = _LEADING.sub("", question, count=1).strip()
    body = body[:1].upper() + body[1:]
    topic = topic_phrase(prev)
    have = set(terms(body))
    subject = _subject(prev)
    if subject and subject.lower() not in body.lower():
        person = re.compile(r"\b(they|he|she)\b", re.IGNORECASE)
        body = person.sub(subject, body, count=1)
        body = re.compile(r"\b(them|him)\b", re.IGNORECASE).sub(subject, body, count=1)
        body = re.compile(r"\b(their|his)\b", re.IGNORECASE).sub(subject + "'s", body, count=1)
    if topic and not set(terms(topic)) <= set(terms(body)):
        thing = re.compile(r"\b(it|this|these|those)\b(?!['’])", re.IGNORECASE)
        body = thing.sub(topic, body, count=1)
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
