"""Training examples for the reader, built from the train part of the evaluation data.

Every example is one `Example`: a first segment (the question; for claim support the
question and the claim), a second segment (a passage, or one sentence for support), the
passage's sentences as character offsets, and whichever targets apply:

- `labels`: per sentence, 1.0 if it answers the question (SQuAD: holds the gold answer;
  CLAPnq: overlaps a gold selected sentence; SciFact: a rationale sentence), else 0.0.
  Hard negatives are other paragraphs of the same SQuAD article (on topic, not answering),
  CLAPnq unanswerable passages and SciFact abstracts cited without evidence.
- `answer`: the gold short-answer character span (SQuAD only).
- `yes_no`: 0 = yes, 1 = no (SciFact SUPPORT / CONTRADICT claims phrased as questions).
- `support`: 1.0 / 0.0 for claim-support pairs (question + claim vs. the cited sentence).

Only questions of the "train" part of `qa.train.split` are used; the "calib" part gives the
held-out examples that thresholds are calibrated on. Sentences are cut with the same
`split_sentences` the index uses, so training sees what inference sees.
"""

from __future__ import annotations

import csv
import io
import random
import re
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from qa.eval.datasets import default_data_dir, load_dataset, parse_sentence_list
from qa.ingest.chunking import split_sentences
from qa.models.reader import support_first
from qa.train import polar, split

Offsets = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Example:
    source: str  # "squad" | "squad-neg" | "clapnq" | "scifact" | "support-..." (for counts)
    first: str  # the question (support: question [SEP] claim)
    second: str  # the passage (support: the cited sentence)
    sentences: Offsets = ()
    labels: tuple[float, ...] = ()
    answer: tuple[int, int] | None = None
    yes_no: int = -1
    support: float = -1.0
    qid: str = ""  # the source question id, for the leakage test


def data_files(data_dir: Path | None = None) -> dict[str, Path]:
    """The evaluation-data files the reader is trained from (hashed into the manifest)."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    return {
        "squad/dev-v1.1.json.zip": root / "squad" / "dev-v1.1.json.zip",
        "clapnq/clapnq_dev_answerable.jsonl": root / "clapnq" / "clapnq_dev_answerable.jsonl",
        "clapnq/clapnq_dev_unanswerable.jsonl": root / "clapnq" / "clapnq_dev_unanswerable.jsonl",
        "scifact/scifact.zip": root / "scifact" / "scifact.zip",
    }


def _labels(sentences: Offsets, gold: list[tuple[int, int]], by_start: bool) -> tuple[float, ...]:
    """1.0 for a sentence that holds a gold span's start (SQuAD answers) or that overlaps a
    gold sentence by at least half of the shorter of the two (CLAPnq selected sentences)."""
    out = []
    for a, b in sentences:
        hit = False
        for s, e in gold:
            if by_start:
                hit |= a <= s < b
            else:
                hit |= min(b, e) - max(a, s) >= 0.5 * min(b - a, e - s)
        out.append(1.0 if hit else 0.0)
    return tuple(out)


_WH = re.compile(r"^\s*(what|which|who|whom|whose|when|where|how many|how much)\b\s*", re.I)


def declarative(question: str, answer: str) -> str:
    """A crude claim from a question and an answer: the leading wh-word replaced by the answer
    ("What is the capital?" + "Paris" -> "Paris is the capital."), else "question: answer."."""
    q = question.strip().rstrip("?").strip()
    m = _WH.match(q)
    if m:
        return f"{answer} {q[m.end() :]}".strip() + "."
    return f"{q}: {answer}."


def squad_examples(
    part: str,
    rng: random.Random,
    negatives: int = 1,
    window_share: float = 0.0,
    data_dir=None,
    yes_no_share: float = 0.0,
):
    """(reading examples, support examples) for SQuAD questions of `part`. A `window_share`
    of the questions is read against a window of 2-3 sentences around the gold one instead of
    the whole paragraph: a third of the tokens, so more questions (and answer spans) fit in
    the training time; whole other paragraphs remain the negatives. A `yes_no_share` of the
    questions is also asked as a yes/no question (`yes_no_question`): with its own answer
    (yes) or, half the time, with another question's answer from the same article (no); the
    gold sentence settles either."""
    ds = load_dataset("squad", data_dir)
    parts = split.squad_parts(data_dir)
    by_pid = {p.pid: p for p in ds.passages}
    article: dict[str, list[str]] = defaultdict(list)
    for p in ds.passages:
        article[p.title].append(p.pid)
    sentences = {p.pid: tuple(split_sentences(p.text)) for p in ds.passages}
    by_paragraph: dict[str, list] = defaultdict(list)
    answers_of: dict[str, list[str]] = defaultdict(list)  # article title -> answer texts
    for q in ds.questions:
        by_paragraph[q.relevant[0]].append(q)
        answers_of[by_pid[q.relevant[0]].title].append(q.answers[0])
    read, support = [], []
    for q in ds.questions:
        pid = q.relevant[0]
        p = by_pid[pid]
        if parts[p.title] != part:
            continue
        sents = sentences[pid]
        span = q.spans[0]
        labels = _labels(sents, [(span.start, span.end)], by_start=True)
        if rng.random() < window_share and 1.0 in labels:
            read.append(_window(q, p.text, sents, labels, (span.start, span.end), rng))
        else:
            read.append(
                Example("squad", q.text, p.text, sents, labels, (span.start, span.end), qid=q.qid)
            )
        others = [o for o in article[p.title] if o != pid]
        for o in rng.sample(others, min(negatives, len(others))):
            n = by_pid[o]
            read.append(
                Example(
                    "squad-neg", q.text, n.text, sentences[o], (0.0,) * len(sentences[o]), qid=q.qid
                )
            )
        support += _support_pairs(q, p.text, sents, labels, by_paragraph[pid], rng)
        if yes_no_share and 1.0 in labels and rng.random() < yes_no_share:
            yn = _yes_no(q, p.text, sents, labels, answers_of[p.title], rng)
            if yn is not None:
                read.append(yn)
    return read, support


# "Who/What" directly followed by a verb: the answer can take the wh-word's place.
_WH_VERB = re.compile(
    r"^\s*(?:who|what)\s+(?=(?:is|was|are|were|has|had|have|can|could|will|would|\w+ed)\b)",
    re.I,
)


def yes_no_question(question: str, answer: str) -> str | None:
    """A who/what question and an answer as a yes/no question ("Who founded Ford?" + "Henry
    Ford" -> "Is it true that Henry Ford founded Ford?"), or None for other questions."""
    q = question.strip().rstrip("?").strip()
    m = _WH_VERB.match(q)
    if not m or not q[m.end() :]:
        return None
    return f"Is it true that {answer} {q[m.end() :]}?"


def _replaced(text: str, sents, i: int, new: str):
    """(`text` with sentence `i` replaced by `new`, the sentence spans moved to match)."""
    a, b = sents[i]
    shift = len(new) - (b - a)
    moved = tuple(
        (x, y) if y <= a else (a, a + len(new)) if x == a else (x + shift, y + shift)
        for x, y in sents
    )
    return text[:a] + new + text[b:], moved


def _yes_no(q, text, sents, labels, article_answers, rng) -> Example | None:
    """The question asked as yes/no against its paragraph: the gold sentence turned into a
    natural polar question (`polar.polar_question`), "yes" half the time (half of those with
    a negation elsewhere in the passage); "no" with the gold sentence negated in the passage
    (`polar.negated`) or the question's answer swapped for another answer of the article;
    else "Is it true that <answer> ...?" from the wh-question."""
    gold = labels.index(1.0)
    sentence = text[sents[gold][0] : sents[gold][1]]
    wrong = [
        a
        for a in article_answers
        if a.lower() not in sentence.lower() and not any(g.lower() in a.lower() for g in q.answers)
    ]
    draw = rng.random()  # half "yes"; "no" by negating the sentence or swapping the answer
    no = bool(wrong) and draw >= 0.5
    question = polar.polar_question(sentence, q.answers[0])
    opposite = polar.negated(sentence, q.answers[0]) if question and draw >= 0.75 else None
    if opposite is not None:
        passage, moved = _replaced(text, sents, gold, opposite)
        return Example("squad-negated", question, passage, moved, labels, yes_no=1, qid=q.qid)
    if question is not None and draw < 0.25:
        # "yes" with a negation elsewhere: in the sentence's other clause, else in another
        # sentence of the passage, so "not" or "false" alone does not make the answer "no"
        other = polar.negated(sentence, q.answers[0], clause=1)
        if other is not None:
            passage, moved = _replaced(text, sents, gold, other)
        else:
            rest = [i for i in range(len(sents)) if i != gold]
            j = rng.choice(rest) if rest else None
            other = polar.negated(text[sents[j][0] : sents[j][1]]) if j is not None else None
            if other is not None:
                passage, moved = _replaced(text, sents, j, other)
        if other is not None:
            return Example(
                "squad-negated-elsewhere", question, passage, moved, labels, yes_no=0, qid=q.qid
            )
    if question is not None:
        if no:
            question = polar.swapped(question, q.answers[0], wrong, rng)
        if question is not None:
            return Example("squad-polar", question, text, sents, labels, yes_no=int(no), qid=q.qid)
    question = yes_no_question(q.text, rng.choice(wrong) if no else q.answers[0])
    if question is None:
        return None
    return Example("squad-yn", question, text, sents, labels, yes_no=int(no), qid=q.qid)


def _window(q, text, sents, labels, answer, rng) -> Example:
    g = labels.index(1.0)
    lo = max(0, g - rng.randint(0, 1))
    hi = min(len(sents), lo + rng.randint(2, 3))
    a = sents[lo][0]
    window = tuple((s - a, e - a) for s, e in sents[lo:hi])
    return Example(
        "squad-window",
        q.text,
        text[a : sents[hi - 1][1]],
        window,
        labels[lo:hi],
        (answer[0] - a, answer[1] - a),
        qid=q.qid,
    )


def _support_pairs(q, text, sents, labels, siblings, rng) -> list[Example]:
    """Claim-support pairs for one SQuAD question: the right answer against its sentence (1),
    a wrong span of the same paragraph (another question's answer) against it (0), and the
    right answer against a sentence that does not hold it (0); also the gold sentence itself
    (1) and the gold sentence with its answer swapped for the wrong span (0)."""
    if 1.0 not in labels:
        return []
    gold = sents[labels.index(1.0)]
    sentence = text[gold[0] : gold[1]]
    answer = q.answers[0]
    out = [
        Example(
            "support-pos",
            support_first(q.text, declarative(q.text, answer)),
            sentence,
            support=1.0,
            qid=q.qid,
        )
    ]
    wrong = [
        s.answers[0]
        for s in siblings
        if s.qid != q.qid
        and s.answers[0].lower() not in answer.lower()
        and answer.lower() not in s.answers[0].lower()
    ]
    if wrong:
        w = rng.choice(wrong)
        out.append(
            Example(
                "support-wrong",
                support_first(q.text, declarative(q.text, w)),
                sentence,
                support=0.0,
                qid=q.qid,
            )
        )
        if answer in sentence and rng.random() < 0.5:
            swapped = sentence.replace(answer, w, 1)
            out.append(
                Example(
                    "support-swap", support_first(q.text, swapped), sentence, support=0.0, qid=q.qid
                )
            )
        else:
            out.append(
                Example(
                    "support-copy",
                    support_first(q.text, sentence),
                    sentence,
                    support=1.0,
                    qid=q.qid,
                )
            )
    elsewhere = [i for i, lab in enumerate(labels) if lab == 0.0]
    if elsewhere:
        a, b = sents[rng.choice(elsewhere)]
        claim = declarative(q.text, answer)
        out.append(
            Example(
                "support-other", support_first(q.text, claim), text[a:b], support=0.0, qid=q.qid
            )
        )
    return out


def clapnq_examples(part: str, data_dir=None) -> list[Example]:
    """CLAPnq questions of `part` against their own passage: answerables with the gold
    sentences as positives, unanswerables with every sentence negative. A question whose
    passage also belongs to a test-part question is left out (no test passage in training)."""
    ds = load_dataset("clapnq", data_dir)
    by_pid = {p.pid: p for p in ds.passages}
    test_pids = {
        pid for q in ds.questions if split.clapnq_part(q.qid) == split.TEST for pid in q.context
    }
    out = []
    for q in ds.questions:
        if split.clapnq_part(q.qid) != part or (part != split.TEST and q.context[0] in test_pids):
            continue
        p = by_pid[q.context[0]]
        sents = tuple(split_sentences(p.text))
        gold = [(s.start, s.end) for s in q.spans]
        labels = _labels(sents, gold, by_start=False) if q.answerable else (0.0,) * len(sents)
        out.append(Example("clapnq", q.text, p.text, sents, labels, qid=q.qid))
    return out


def as_question(claim: str) -> str:
    """A SciFact claim phrased as a yes/no question."""
    c = claim.strip().rstrip(".")
    return f"Is it true that {c[:1].lower() + c[1:] if c[1:2].islower() else c}?"


def scifact_examples(
    part: str, data_dir=None, claims_file: str = "claims_train.csv"
) -> tuple[list[Example], list[Example]]:
    """SciFact claims_train: (reading examples with yes/no, support examples). A claim with
    evidence becomes a yes (SUPPORT) or no (CONTRADICT) question over its abstract with the
    rationale sentences as positives; a cited abstract without evidence is a negative."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    csv.field_size_limit(1 << 24)
    with zipfile.ZipFile(root / "scifact" / "scifact.zip") as zf:
        corpus = {
            r["doc_id"]: r
            for r in csv.DictReader(io.TextIOWrapper(zf.open("corpus_train.csv"), encoding="utf-8"))
        }
        claims = list(csv.DictReader(io.TextIOWrapper(zf.open(claims_file), encoding="utf-8")))
    read, support = [], []
    seen: set[tuple[str, str]] = set()
    for row in claims:
        if claims_file == "claims_train.csv" and split.scifact_train_part(row["id"]) != part:
            continue
        doc_ids = (
            [row["evidence_doc_id"]]
            if row["evidence_doc_id"]
            else re.findall(r"\d+", row["cited_doc_ids"])[:1]
        )
        for doc_id in doc_ids:
            if doc_id not in corpus or (row["id"], doc_id) in seen:
                continue
            seen.add((row["id"], doc_id))
            abstract = parse_sentence_list(corpus[doc_id]["abstract"])
            text, sents = "", []
            for s in abstract:
                s = " ".join(s.split())
                if text:
                    text += " "
                sents.append((len(text), len(text) + len(s)))
                text += s
            rationale = {int(i) for i in re.findall(r"\d+", row["evidence_sentences"])}
            label = row["evidence_label"]
            labels = tuple(1.0 if i in rationale and label else 0.0 for i in range(len(sents)))
            question = as_question(row["claim"])
            yes_no = {"SUPPORT": 0, "CONTRADICT": 1}.get(label, -1)
            read.append(
                Example(
                    "scifact",
                    question,
                    text,
                    tuple(sents),
                    labels,
                    yes_no=yes_no,
                    qid="scifact:" + row["id"],
                )
            )
            if label and rationale:
                evidence = " ".join(text[a:b] for i, (a, b) in enumerate(sents) if i in rationale)
                support.append(
                    Example(
                        "support-scifact",
                        support_first(question, row["claim"]),
                        evidence,
                        support=1.0 if label == "SUPPORT" else 0.0,
                        qid="scifact:" + row["id"],
                    )
                )
    return read, support
