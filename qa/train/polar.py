"""Natural yes/no questions made from SQuAD answer sentences, for the reader's yes/no head.

SQuAD has no yes/no questions. A gold sentence that holds the answer becomes a polar
question by moving its auxiliary verb to the front ("Tesla was born in Smiljan." -> "Was
Tesla born in Smiljan?") or, without one, by "did"/"does" and the verb's base form
("Ford denied the report." -> "Did Ford deny the report?"; lemmas from `lemminflect`). The
answer is "yes" against the sentence; with the question's answer span swapped for another
answer of the same article that the sentence does not contain, it is "no". A leading
phrase before a comma ("In 1905, ...") goes to the end.

The questions are imperfect English now and then (the subject is taken as the words before
the verb); what the head must learn is whether the sentence states what the question asks,
and the swap makes the "no" cases differ from the "yes" ones by the answer alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.text import STOPWORDS

AUX = frozenset("is are was were has have had can could will would should may might must".split())
MAX_WORDS = 40  # longer sentences make questions no one asks
MAX_SUBJECT = 8  # words before the verb
_WORD = re.compile(r"\S+")
# words that do not end a subject: a verb right after them is not the main verb
_NOT_SUBJECT_END = frozenset("the a an this that these those its their his her our".split())
# a sentence opening with a subordinate clause has its main verb further on: skipped
_SUBORDINATE = frozenset(
    "while although though when whenever if because as after before since unless until whereas "
    "once".split()
)
# ... of which these state a fact: the clause after them is asked about too
_FACTUAL = frozenset("while although though because since after before once whereas".split())
_DASHES = frozenset("–—-")
_BREAK = re.compile(r"\s+[–—-]\s+|,\s+")
_HAVE = {"has": "Does", "have": "Do", "had": "Did"}


def _lemma_of(word: str, tags: Sequence[str]) -> str | None:
    """The verb's base form if `word` is that verb inflected as one of `tags` (VBD, VBZ)."""
    from lemminflect import getAllLemmas, getInflection, getLemma

    if not word.isalpha() or not word.islower():
        return None
    if "VBZ" in tags and "NOUN" in getAllLemmas(word):  # "interactions": a plural, not a verb
        return None
    for lemma in getLemma(word, "VERB"):
        for tag in tags:
            if word in getInflection(lemma, tag):
                return lemma
    return None


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    if first.lower() in STOPWORDS:
        return first.lower() + text[len(first) :]
    return text


def _quoted(text: str) -> bool:
    return '"' in text or "“" in text or "”" in text


def _parts(sentence: str) -> list[tuple[str, str, str, str]]:
    """(text before, leading phrase, clause, text after) for each clause of `sentence` that a
    question can ask about. A sentence opening with a subordinate clause that states a fact
    ("While Ford and Xiaomi both denied the report – …, a new revelation has surfaced") gives
    that clause and the main clause after it; one opening with a condition ("If …") gives
    none; any other gives its main clause, a short leading phrase ("In 1905, …") apart."""
    s = " ".join(sentence.split()).rstrip(" .!;:")
    if not s or "?" in s:
        return []
    first = s.split(" ", 1)[0]
    if first.lower() not in _SUBORDINATE:
        head, sep, rest = s.partition(", ")
        if sep and len(head.split()) <= 6:  # "In 1905, Tesla was ..."
            return [("", head, rest, "")]
        return [("", "", s, "")]
    if first.lower() not in _FACTUAL:
        return []
    start = len(first) + 1
    brk = _BREAK.search(s, start)
    if brk is None:
        return []
    out = [(s[:start], "", s[start : brk.start()], s[brk.start() :])]
    main = brk.end()
    if brk.group().strip() in _DASHES:  # "– an aside –": the main clause follows the aside
        close = re.compile(rf"\s+{re.escape(brk.group().strip())}\s+").search(s, main)
        main = close.end() if close else len(s)
    if main < len(s):
        out.append((s[:main], "", s[main:], ""))
    return out


def _clause(text: str) -> list[str] | None:
    """The words of a clause fit for a question: no quotation, 2 to MAX_WORDS words."""
    words = _WORD.findall(text)
    if _quoted(text) or not 2 <= len(words) <= MAX_WORDS:
        return None
    return words


def _main_verb(words: Sequence[str]) -> tuple[int, str, str] | None:
    """(index, how, base form) of the clause's main verb within MAX_SUBJECT words: how is
    "aux" (is, was, can, ...), "have" (has/had as the main verb), "did" or "does"."""
    for i, w in enumerate(words[: MAX_SUBJECT + 1]):
        prev = words[i - 1].lower() if i else ""
        if i == 0 or prev in _NOT_SUBJECT_END or prev.endswith("ly") or w.endswith(","):
            continue
        later = [x for x in words[i + 1 : i + 3] if not x.endswith("ly")]  # "has previously won"
        after = later[0] if later else ""
        if (
            w.lower() in _HAVE
            and not _lemma_of(after.rstrip(",;:"), ("VBN",))
            and after.lower() != "not"
        ):
            return i, "have", "have"
        if w.lower() in AUX:
            return i, "aux", w.lower()
        lemma = _lemma_of(w, ("VBD",))
        if lemma is not None:
            return i, "did", lemma
        lemma = _lemma_of(w, ("VBZ",))
        if lemma is not None:
            return i, "does", lemma
    return None


def _parsed(
    sentence: str, answer: str = ""
) -> list[tuple[str, str, str, list[str], int, str, str]]:
    """(text before, text after, leading phrase, clause words, and `_main_verb`'s index, how
    and base form) for each clause of `sentence` with a verb to front; those holding
    `answer` first."""
    out = []
    for before, lead, clause, after in _parts(sentence):
        words = _clause(clause)
        found = _main_verb(words) if words else None
        if found is not None:
            out.append((before, after, lead, words, *found))
    if answer:
        out.sort(key=lambda p: answer not in " ".join([p[2], *p[3]]))
    return out


def polar_question(sentence: str, answer: str = "") -> str | None:
    """`sentence` as a yes/no question that it answers "yes" (about the clause holding
    `answer` where it has two), or None when no clause has a verb to front within
    MAX_SUBJECT words (or all are too long)."""
    parsed = _parsed(sentence, answer)
    if not parsed:
        return None
    _, _, lead, words, i, how, lemma = parsed[0]
    subject = _lower_first(" ".join(words[:i]))
    tail = " ".join(words[i + 1 :])
    if how == "have":
        q = f"{_HAVE[words[i].lower()]} {subject} have {tail}"  # "has" as the main verb
    elif how == "aux":
        q = f"{lemma.title()} {subject} {tail}"
    else:
        q = f"{how.title()} {subject} {lemma} {tail}"
    q = q.strip()
    if lead:
        q += " " + _lower_first(lead)  # the leading phrase goes to the end
    return q.rstrip(" ,") + "?"


_NEGATED = {"have": {"has": "does not have", "have": "do not have", "had": "did not have"}}


def negated(sentence: str, answer: str = "", clause: int = 0) -> str | None:
    """`sentence` saying the opposite ("Ford denied the report." -> "Ford did not deny the
    report."), for which its own polar question (with the same `answer`) is answered "no";
    None where the main verb is not found or the clause is negated already. `clause` 1
    negates the other clause of a two-clause sentence instead (None if it has one): the
    question, about clause 0, is then still answered "yes"."""
    parsed = _parsed(sentence, answer)
    if len(parsed) <= clause:
        return None
    before, after, lead, words, i, how, lemma = parsed[clause]
    if any(w.lower() in ("not", "never", "no") or w.lower().endswith("n't") for w in words):
        return None
    w = words[i]
    if how == "have":
        verb = _NEGATED["have"][w.lower()]
    elif how == "aux":
        verb = f"{w} not"
    else:
        verb = f"{how} not {lemma}"
    out = " ".join([*words[:i], verb, *words[i + 1 :]])
    if lead:
        out = f"{lead}, {out}"
    return before + out + after + "."


def _shape(text: str) -> tuple[bool, bool]:
    return any(c.isdigit() for c in text), text[:1].isupper()


def swapped(question: str, answer: str, others: Sequence[str], rng) -> str | None:
    """`question` with `answer` replaced by one of `others` of the same shape (number or not,
    capitalised or not); None if the answer is not in the question or nothing fits."""
    if not answer or answer not in question:
        return None
    pool = [o for o in others if _shape(o) == _shape(answer) and o.lower() not in answer.lower()]
    pool = [o for o in pool if answer.lower() not in o.lower()]
    if not pool:
        return None
    return question.replace(answer, rng.choice(pool), 1)
