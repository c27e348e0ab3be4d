"""Measure a reader on one part of the split: calibration (the held-out "calib" slice of the
train part, which sets the thresholds) and the test-part figures (`python -m qa.train eval`).

SQuAD: each question is read against its gold paragraph plus up to 4 other paragraphs of the
same article (on-topic distractors), as retrieval would hand them over. Figures: sentence
precision@1 (the top sentence over all 5 passages is the gold-answer sentence), short-answer
EM / token F1 (SQuAD normalisation) of the span in the top sentence, and with the answer
threshold the share answered and the precision@1 of the answered. CLAPnq: one passage per
question; share of answerables answered and of unanswerables declined. Claim support: AUC
and accuracy of held-out claim pairs. Yes/no: accuracy of p_yes vs p_no on SciFact claims.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from qa.eval.datasets import load_dataset
from qa.eval.metrics import exact_match, token_f1
from qa.ingest.chunking import split_sentences
from qa.train import data, split

ANSWERED_SHARE = 0.90  # the target: answer at least 90% of answerable questions
YES_NO_PRECISION = 0.90  # speak "Yes"/"No" only where this accuracy held on the calib slice


@dataclass(frozen=True)
class Scored:
    """One question's result: highest sentence probability, whether the top sentence is a
    gold one, and (SQuAD) the short answer's EM / F1."""

    answerable: bool
    top_prob: float
    top_correct: bool
    em: float = 0.0
    f1: float = 0.0


def _bar(items, desc, progress):
    from tqdm import tqdm

    return tqdm(items, desc=desc, disable=not progress, mininterval=5)


def squad_scores(
    reader, part: str, n: int | None, seed: int = 0, others: int = 4, progress=True
) -> list[Scored]:
    ds = load_dataset("squad")
    parts = split.squad_parts()
    by_pid = {p.pid: p for p in ds.passages}
    article = defaultdict(list)
    for p in ds.passages:
        article[p.title].append(p.pid)
    qs = [q for q in ds.questions if parts[by_pid[q.relevant[0]].title] == part]
    rng = random.Random(seed)
    if n is not None and n < len(qs):
        qs = rng.sample(qs, n)
    out = []
    for q in _bar(qs, f"squad {part}", progress):
        gold = by_pid[q.relevant[0]]
        pool = [o for o in article[gold.title] if o != gold.pid]
        pids = [gold.pid] + rng.sample(pool, min(others, len(pool)))
        passages = [(by_pid[pid].text, split_sentences(by_pid[pid].text)) for pid in pids]
        readings = reader.read(q.text, passages)
        k, best = max(
            ((i, s) for i, r in enumerate(readings) for s in r.sentences), key=lambda t: t[1].prob
        )
        correct = k == 0 and any(best.start <= s.start < best.end for s in q.spans)
        r = readings[k]
        answer = passages[k][0][r.span_start : r.span_end]
        out.append(
            Scored(
                True,
                best.prob,
                correct,
                exact_match(answer, q.answers),
                token_f1(answer, q.answers),
            )
        )
    return out


def clapnq_scores(reader, part: str, n: int | None = None, progress=True) -> list[Scored]:
    ds = load_dataset("clapnq")
    by_pid = {p.pid: p for p in ds.passages}
    qs = [q for q in ds.questions if split.clapnq_part(q.qid) == part]
    if n is not None:
        yes = [q for q in qs if q.answerable][: n // 2]
        qs = yes + [q for q in qs if not q.answerable][: n - len(yes)]
    out = []
    for q in _bar(qs, f"clapnq {part}", progress):
        p = by_pid[q.context[0]]
        [r] = reader.read(q.text, [(p.text, split_sentences(p.text))])
        best = r.best
        if best is None:
            out.append(Scored(q.answerable, 0.0, False))
            continue
        correct = any(min(best.end, s.end) > max(best.start, s.start) for s in q.spans)
        out.append(Scored(q.answerable, best.prob, correct))
    return out


def support_pairs(part: str, n: int, seed: int = 0) -> list[data.Example]:
    """Held-out claim-support pairs: SQuAD questions of `part` (right / wrong span / other
    sentence), plus SciFact claims of the calib slice (part "calib") or claims_validation
    (part "test")."""
    rng = random.Random(seed)
    _, pairs = data.squad_examples(part, rng, negatives=0)
    pairs = rng.sample(pairs, min(n, len(pairs)))
    if part == split.TEST:
        _, sf = data.scifact_examples(part, claims_file="claims_validation.csv")
    else:
        _, sf = data.scifact_examples(part)
    return pairs + sf[: max(1, n // 4)]


def auc(labels: list[float], scores: list[float]) -> float | None:
    """Area under the ROC curve (probability a positive outranks a negative)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y >= 0.5]
    neg = [s for s, y in zip(scores, labels, strict=True) if y < 0.5]
    if not pos or not neg:
        return None
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def support_scores(
    reader, part: str, n: int, progress=True
) -> tuple[list[float], list[float], list[str]]:
    pairs = support_pairs(part, n)
    probs = []
    for e in _bar(pairs, f"support {part}", progress):
        question, claim = e.first.split(" [SEP] ", 1)
        probs.append(reader.support(question, claim, e.second))
    return [e.support for e in pairs], probs, [e.source for e in pairs]


def yes_no_scores(
    reader, part: str, n: int | None = None, progress=True
) -> list[tuple[int, float, float]]:
    """(gold 0 = yes / 1 = no, p_yes, p_no) for SciFact claims with a verdict."""
    if part == split.TEST:
        read, _ = data.scifact_examples(part, claims_file="claims_validation.csv")
    else:
        read, _ = data.scifact_examples(part)
    out = []
    rows = [e for e in read if e.yes_no >= 0][:n]
    for e in _bar(rows, f"yes/no {part}", progress):
        [r] = reader.read(e.first, [(e.second, e.sentences)])
        out.append((e.yes_no, r.p_yes, r.p_no))
    return out


def squad_yes_no_scores(
    reader, part: str, n: int | None = 200, progress=True
) -> list[tuple[int, float, float]]:
    """(gold, p_yes, p_no) for SQuAD questions of `part` asked as yes/no against their
    paragraph (`data._yes_no`: natural polar questions, "no" with the answer swapped)."""
    read, _ = data.squad_examples(part, random.Random(7), 0, 0.0, yes_no_share=1.0)
    rows = [e for e in read if e.yes_no >= 0]
    rows = random.Random(7).sample(rows, min(len(rows), n)) if n is not None else rows
    out = []
    for e in _bar(rows, f"yes/no squad {part}", progress):
        [r] = reader.read(e.first, [(e.second, e.sentences)])
        out.append((e.yes_no, r.p_yes, r.p_no))
    return out


def quantile_low(values: list[float], share: float) -> float:
    """The largest threshold t with at least `share` of `values` >= t."""
    ordered = sorted(values, reverse=True)
    if not ordered:
        return 0.5
    k = max(0, min(len(ordered) - 1, int(share * len(ordered) + 0.999999) - 1))
    return ordered[k]


def answer_figures(scored: list[Scored], threshold: float) -> dict:
    ans = [s for s in scored if s.answerable]
    una = [s for s in scored if not s.answerable]
    answered = [s for s in ans if s.top_prob >= threshold]
    fig = {
        "questions": len(scored),
        "answerable": len(ans),
        "precision_at_1": _mean([s.top_correct for s in ans]),
        "answered_share": _mean([s.top_prob >= threshold for s in ans]),
        "answered_precision": _mean([s.top_correct for s in answered]),
    }
    if una:
        fig["unanswerable"] = len(una)
        fig["declined_unanswerable_share"] = _mean([s.top_prob < threshold for s in una])
    return fig


def _mean(values) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else None


def yes_no_figures(rows, threshold: float) -> dict:
    spoken = [(g, y, n) for g, y, n in rows if max(y, n) >= threshold]
    return {
        "claims": len(rows),
        "accuracy": _mean([(y < n) == (g == 1) for g, y, n in rows]),
        "confidence_threshold": round(threshold, 4),
        "spoken_share": _mean([1 for _ in spoken])
        if not rows
        else round(len(spoken) / len(rows), 4),
        "spoken_accuracy": _mean([(y < n) == (g == 1) for g, y, n in spoken]),
    }


def yes_no_threshold(rows) -> float:
    """The lowest confidence max(p_yes, p_no) at which the spoken answers keep at least
    YES_NO_PRECISION accuracy (1.0, never speak, if no cutoff reaches it)."""
    for t in [i / 100 for i in range(50, 100)]:
        spoken = [(g, y, n) for g, y, n in rows if max(y, n) >= t]
        if (
            len(spoken) >= 10
            and _mean([(y < n) == (g == 1) for g, y, n in spoken]) >= YES_NO_PRECISION
        ):
            return t
    return 1.0


def yes_no_class_thresholds(sets: dict[str, list]) -> dict[str, float]:
    """For "yes" and for "no" apart, the lowest confidence at which that answer, when said,
    keeps YES_NO_PRECISION accuracy in every set of rows (label, p_yes, p_no) on its own,
    counted conservatively (right / (said + 1), so a few lucky answers do not pass), with
    at least 10 said in all; 1.0 (never said) if no cutoff reaches it. Apart, because the
    synthetic SQuAD "no" (a swapped answer, a negated sentence) is easy and real claims'
    "no" is not: pooled, SciFact's said "no" was right 5 times in 10 (reader run 6)."""
    out = {}
    for kind in ("yes", "no"):
        out[kind] = 1.0
        for t in [i / 100 for i in range(50, 100)]:
            said = {
                name: [g for g, y, n in rows if max(y, n) >= t and (y >= n) == (kind == "yes")]
                for name, rows in sets.items()
            }
            right = {
                name: sum((g == 0) == (kind == "yes") for g in gs) for name, gs in said.items()
            }
            if sum(map(len, said.values())) >= 10 and all(
                right[name] / (len(gs) + 1) >= YES_NO_PRECISION for name, gs in said.items() if gs
            ):
                out[kind] = t
                break
    return out


def yes_no_class_figures(rows, thresholds: dict[str, float]) -> dict:
    """How often each answer is said at its threshold, and how often it is right."""
    fig = {}
    for kind in ("yes", "no"):
        said = [
            g for g, y, n in rows if (y >= n) == (kind == "yes") and max(y, n) >= thresholds[kind]
        ]
        fig[kind] = {
            "threshold": thresholds[kind],
            "said_share": round(len(said) / len(rows), 4) if rows else None,
            "said_accuracy": _mean([(g == 0) == (kind == "yes") for g in said]),
        }
    return fig


def best_accuracy_threshold(labels, probs) -> float:
    best, best_acc = 0.5, -1.0
    for t in [i / 100 for i in range(5, 96)]:
        acc = sum((p >= t) == (y >= 0.5) for p, y in zip(probs, labels, strict=True)) / max(
            1, len(labels)
        )
        if acc > best_acc:
            best, best_acc = t, acc
    return best


def support_figures(labels, probs, sources, threshold: float) -> dict:
    by = defaultdict(list)
    for y, p, s in zip(labels, probs, sources, strict=True):
        by[s].append((p >= threshold) == (y >= 0.5))
    return {
        "pairs": len(labels),
        "auc": None if auc(labels, probs) is None else round(auc(labels, probs), 4),
        "threshold": threshold,
        "accuracy": _mean(
            [(p >= threshold) == (y >= 0.5) for y, p in zip(labels, probs, strict=True)]
        ),
        "accuracy_by_kind": {k: _mean(v) for k, v in sorted(by.items())},
    }


def calibrate(folder: Path, n: int, progress=True) -> tuple[dict, dict]:
    """Thresholds from the calib slice of the train part (never the test part)."""
    from qa.models.reader import Reader

    reader = Reader(folder)
    sq = squad_scores(reader, split.CALIB, n, progress=progress)
    cl = clapnq_scores(reader, split.CALIB, None if n >= 100 else n, progress=progress)
    t_squad = quantile_low([s.top_prob for s in sq], ANSWERED_SHARE)
    t_clap = quantile_low([s.top_prob for s in cl if s.answerable], ANSWERED_SHARE)
    threshold = min(t_squad, t_clap)
    labels, probs, sources = support_scores(reader, split.CALIB, n, progress)
    t_support = best_accuracy_threshold(labels, probs)
    yn = yes_no_scores(reader, split.CALIB, None if n >= 100 else n, progress)
    yn_squad = squad_yes_no_scores(reader, split.CALIB, n, progress)
    t_yn = yes_no_threshold(yn + yn_squad)
    per_answer = yes_no_class_thresholds({"scifact": yn, "squad": yn_squad})
    thresholds = {
        "answer": round(threshold, 4),
        "answer_squad": round(t_squad, 4),
        "answer_clapnq": round(t_clap, 4),
        "support": t_support,
        "yes_no_confidence": t_yn,
        "yes_min": per_answer["yes"],
        "no_min": per_answer["no"],
        "how": (
            "calib slice of the train part: 'answer' = the highest top-sentence probability "
            f"that still answers >= {ANSWERED_SHARE:.0%} of SQuAD calib questions (5 passages "
            "each) and of CLAPnq calib answerables (the lower of the two); 'support' = best "
            "accuracy on calib claim pairs; 'yes_no_confidence' = lowest max(p_yes, p_no) "
            f"with spoken accuracy >= {YES_NO_PRECISION:.0%} on SciFact calib claims and "
            "SQuAD calib questions asked as yes/no, pooled; 'yes_min' / 'no_min' = the same "
            "for each answer apart, on each of the two sets (what answers use)"
        ),
    }
    figures = {
        "squad": answer_figures(sq, threshold) | _span_figures(sq),
        "clapnq": answer_figures(cl, threshold),
        "support": support_figures(labels, probs, sources, t_support),
        "yes_no": yes_no_figures(yn, t_yn),
        "yes_no_squad": yes_no_figures(yn_squad, t_yn),
        "yes_no_per_answer": {
            "scifact": yes_no_class_figures(yn, per_answer),
            "squad": yes_no_class_figures(yn_squad, per_answer),
        },
    }
    return thresholds, figures


def _per_answer(th: dict) -> dict[str, float]:
    both = th.get("yes_no_confidence", 1.0)
    return {"yes": th.get("yes_min", both), "no": th.get("no_min", both)}


def _span_figures(scored: list[Scored]) -> dict:
    return {"span_em": _mean([s.em for s in scored]), "span_f1": _mean([s.f1 for s in scored])}


def test_report(
    folder: Path, n_squad: int | None, n_support: int = 600, progress=True, quantize=None
) -> dict:
    """The test-part figures, at the manifest's calibrated thresholds, plus reading speed."""
    from qa.models.reader import Reader

    reader = Reader(folder, quantize=quantize)
    th = reader.thresholds
    t0 = time.perf_counter()
    sq = squad_scores(reader, split.TEST, n_squad, seed=1, progress=progress)
    per_question = (time.perf_counter() - t0) / max(1, len(sq))
    cl = clapnq_scores(reader, split.TEST, progress=progress)
    labels, probs, sources = support_scores(reader, split.TEST, n_support, progress)
    yn = yes_no_scores(reader, split.TEST, progress=progress)
    yn_squad = squad_yes_no_scores(reader, split.TEST, 300, progress)
    return {
        "squad": answer_figures(sq, th["answer"])
        | _span_figures(sq)
        | {"seconds_per_question_5_passages": round(per_question, 4)},
        "clapnq": answer_figures(cl, th["answer"]),
        "support": support_figures(labels, probs, sources, th["support"]),
        "yes_no_scifact_validation": yes_no_figures(yn, th["yes_no_confidence"]),
        "yes_no_squad": yes_no_figures(yn_squad, th["yes_no_confidence"]),
        "yes_no_per_answer": {
            "scifact": yes_no_class_figures(yn, _per_answer(th)),
            "squad": yes_no_class_figures(yn_squad, _per_answer(th)),
        },
        "quantize_int8": bool(reader._quantize) if reader._quantize is not None else False,
    }
