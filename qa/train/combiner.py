"""Fit the evidence scorer (`qa.answer.combine`) on the train part, calibrate it on the
held-out slice, and write `combiner.json` beside the reader.

Each question is asked as `qa ask` asks it: hybrid search over the data set's whole index
(the one `qa eval` builds), then the reader and the similarity signals over the retrieved
passages. A sentence is labelled as `qa eval` judges a citation: in the gold passage and
holding the answer (SQuAD), or overlapping a gold sentence (CLAPnq).

Questions the documents do not answer come from two places: CLAPnq's unanswerable questions,
and SQuAD questions asked with their gold paragraph removed from the search results (the
passages left are on the question's topic, often from the same article, but do not hold the
answer: the hardest case for refusing). Test-part questions are never used.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.answer import combine
from qa.answer.combine import QUESTION_FEATURES, SENTENCE_FEATURES, Features, fit_logistic
from qa.config import Settings
from qa.eval.datasets import Question, load_dataset
from qa.eval.metrics import contains_answer
from qa.train import split

SEED = 17
# Answer at least this share of each data set's answerable calibration questions.
ANSWERED_SHARE = 0.9


@dataclass
class CombinerConfig:
    reader: Path | None = None  # reader folder (default: models/reader); combiner.json goes there
    squad_questions: int = 400  # SQuAD train-part questions (each also asked without its gold)
    clapnq_questions: int | None = None  # CLAPnq train-part questions (None: all)
    calib_questions: int = 200  # SQuAD calibration-slice questions (and all CLAPnq calib)
    seed: int = SEED
    l2: float = 1.0
    progress: bool = True


@dataclass(frozen=True)
class Asked:
    """One question asked against its index: its features and every sentence's label."""

    dataset: str
    qid: str
    kind: str  # "answerable", "unanswerable" (by the data set), "gold_removed" (see above)
    features: Features
    labels: np.ndarray  # per sentence: 1 if citing it is correct


class MemoReader:
    """A reader whose readings are remembered per (question, passage): asking again without
    the gold paragraph re-reads only the passages that are new."""

    def __init__(self, reader) -> None:
        self.reader = reader
        self.memo: dict = {}

    def read(self, question, passages):
        keys = [(question, text, tuple(spans)) for text, spans in passages]
        todo = [(k, p) for k, p in zip(keys, passages, strict=True) if k not in self.memo]
        if todo:
            for (k, _), r in zip(
                todo, self.reader.read(question, [p for _, p in todo]), strict=True
            ):
                self.memo[k] = r
        return [self.memo[k] for k in keys]


def label(f: Features, q: Question, match: str, pid_of: dict[str, str]) -> np.ndarray:
    out = np.zeros(len(f.sentences))
    for i, s in enumerate(f.sentences):
        pid = pid_of.get(s.source, "")
        if pid not in q.relevant:
            continue
        spans = [g for g in q.spans if g.pid == pid]
        if match == "contains":
            ok = any(s.start <= g.start and g.end <= s.end for g in spans) or contains_answer(
                s.text, q.answers
            )
        elif q.spans:
            ok = any(s.start < g.end and g.start < s.end for g in spans)
        else:
            ok = True
        out[i] = float(ok)
    return out


def ask_all(name: str, questions, settings: Settings, reader, hide_gold: bool, progress: bool):
    """Ask each question against the data set's eval index; with `hide_gold` also without its
    gold passages."""
    from tqdm import tqdm

    from qa.eval.retrieval import open_index

    dataset = load_dataset(name)
    ev = open_index(dataset, settings)
    index = ev.index
    texts: dict[str, str] = {}

    def text_of(source: str) -> str:
        if source not in texts:
            texts[source] = index.document_text(source)
        return texts[source]

    out: list[Asked] = []
    k = settings.k
    try:
        for q in tqdm(questions, desc=f"asking {name}", unit="q", disable=not progress):
            found = index.search(q.text, k + (8 if hide_gold else 0))
            variants = [(found[:k], False)]
            if hide_gold:
                rest = [h for h in found if ev.pid_of.get(h.source) not in q.relevant]
                variants.append((rest[:k], True))
            for hits, hidden in variants:
                f = combine.features(q.text, hits, text_of, index.embedder, reader)
                y = label(f, q, dataset.match, ev.pid_of)
                kind = (
                    "gold_removed" if hidden else "answerable" if q.answerable else "unanswerable"
                )
                out.append(Asked(name, q.qid, kind, f, y))
    finally:
        index.close()
    return out


def _questions(name: str, part: str, n: int | None, rng: random.Random) -> list[Question]:
    dataset = load_dataset(name)
    qs = [q for q in dataset.questions if split.part(name, q) == part]
    if n is not None and n < len(qs):
        qs = sorted(rng.sample(qs, n), key=lambda q: q.qid)
    return qs


def fit(asked: list[Asked], l2: float):
    """The sentence model (on questions with a correct sentence among the retrieved), then
    the answerability model (on every question: does the top sentence answer?)."""
    rows = [a for a in asked if a.labels.any()]
    x = np.vstack([a.features.matrix for a in rows])
    y = np.concatenate([a.labels for a in rows])
    sentence = fit_logistic(x, y, SENTENCE_FEATURES, l2)
    qx, qy = question_data(asked, sentence)
    question = fit_logistic(qx, qy, QUESTION_FEATURES, l2)
    return sentence, question


def question_data(asked: list[Asked], sentence) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for a in asked:
        if not a.features.sentences:
            continue
        z = sentence.logits(a.features.matrix)
        xs.append(combine.question_row(a.features, z))
        ys.append(float(a.labels[int(np.argmax(z))]))
    return np.array(xs), np.array(ys)


def figures(asked: list[Asked], model: combine.Combiner, threshold: float) -> dict:
    """Per data set: answered share of answerable questions, precision of the answered
    (top sentence correct), declined share of questions without an answer in the documents."""
    out: dict[str, dict] = {}
    for name in sorted({a.dataset for a in asked}):
        rows = [a for a in asked if a.dataset == name]
        ans = [a for a in rows if a.kind == "answerable"]
        no = [a for a in rows if a.kind == "unanswerable"]
        hidden = [a for a in rows if a.kind == "gold_removed"]
        d: dict = {"questions": len({a.qid for a in rows})}

        def scored(a: Asked):
            s = model.score(a.features)
            top_ok = bool(s.order) and bool(a.labels[s.order[0]])
            return s.answerability, top_ok

        if ans:
            res = [scored(a) for a in ans]
            answered = [ok for p, ok in res if p >= threshold]
            d["answerable"] = len(ans)
            d["precision_at_1"] = round(float(np.mean([ok for _, ok in res])), 4)
            d["answered_share"] = round(len(answered) / len(ans), 4)
            d["answered_precision"] = round(float(np.mean(answered)), 4) if answered else None
        if no:
            d["unanswerable"] = len(no)
            d["declined_unanswerable_share"] = round(
                float(np.mean([scored(a)[0] < threshold for a in no])), 4
            )
        if hidden:
            d["gold_removed"] = len(hidden)
            d["declined_gold_removed_share"] = round(
                float(np.mean([scored(a)[0] < threshold for a in hidden])), 4
            )
        out[name] = d
    return out


def calibrate(asked: list[Asked], model: combine.Combiner) -> float:
    """The highest threshold that still answers ANSWERED_SHARE of each data set's answerable
    questions (the lower of the data sets' thresholds)."""
    cuts = []
    for name in sorted({a.dataset for a in asked}):
        probs = sorted(
            model.score(a.features).answerability
            for a in asked
            if a.dataset == name and a.kind == "answerable"
        )
        if probs:
            cuts.append(probs[int(len(probs) * (1 - ANSWERED_SHARE))])
    return float(min(cuts)) if cuts else 0.5


def yes_no_rows(reader, progress: bool) -> dict[str, list[tuple[int, float, float]]]:
    """(gold 0 = yes / 1 = no, p_yes, p_no) on the calibration slice: SciFact claims as
    questions, and SQuAD calibration questions asked as yes/no (`evaluate.squad_yes_no_scores`)."""
    from qa.train import evaluate

    rows = {"scifact": evaluate.yes_no_scores(reader, split.CALIB, None, progress)}
    rows["squad"] = evaluate.squad_yes_no_scores(reader, split.CALIB, None, progress)
    return rows


def train(cfg: CombinerConfig) -> dict:
    from qa.models.reader import Reader, read_manifest, sha256_file

    t0 = time.time()
    reader = Reader(cfg.reader)
    folder = reader.folder
    memo = MemoReader(reader)
    settings = Settings.load()
    rng = random.Random(cfg.seed)
    squad_train = _questions("squad", split.TRAIN, cfg.squad_questions, rng)
    clap_train = _questions("clapnq", split.TRAIN, cfg.clapnq_questions, rng)
    squad_calib = _questions("squad", split.CALIB, cfg.calib_questions, rng)
    clap_calib = _questions("clapnq", split.CALIB, None, rng)
    p = cfg.progress
    train_rows = ask_all("squad", squad_train, settings, memo, True, p)
    train_rows += ask_all("clapnq", clap_train, settings, memo, False, p)
    memo.memo.clear()
    sentence, question = fit(train_rows, cfg.l2)
    calib_rows = ask_all("squad", squad_calib, settings, memo, True, p)
    calib_rows += ask_all("clapnq", clap_calib, settings, memo, False, p)
    model = combine.Combiner(sentence, question, {}, {})
    threshold = calibrate(calib_rows, model)
    from qa.train import evaluate

    yn = yes_no_rows(reader, p)
    pooled = [row for rows in yn.values() for row in rows]
    t_yes_no = evaluate.yes_no_threshold(pooled)
    manifest = read_manifest(folder)
    record = {
        "format": combine.FORMAT,
        "format_version": combine.FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "reader_weights_sha256": sha256_file(folder / manifest["weights_file"]),
        "training_data_sha256": manifest.get("training_data_sha256"),
        "split": "the reader's (manifest.json 'split', qa/train/split.py): train part to fit, "
        "its calibration slice for the threshold; test part never used",
        "seed": cfg.seed,
        "config": {
            "squad_questions": cfg.squad_questions,
            "clapnq_questions": cfg.clapnq_questions,
            "calib_questions": cfg.calib_questions,
            "l2": cfg.l2,
            "k": settings.k,
            "embed_backend": settings.embed_backend,
            "answered_share": ANSWERED_SHARE,
        },
        "training_questions": {
            "squad": len(squad_train),
            "squad_gold_removed": len(squad_train),
            "clapnq": len(clap_train),
        },
        "sentence_model": sentence.to_dict(),
        "answerability_model": question.to_dict(),
        "thresholds": {
            "answer": round(threshold, 4),
            "yes_no": t_yes_no,
            "how": f"calibration slice: 'answer' = the highest answerability that still answers "
            f">= {ANSWERED_SHARE:.0%} of SQuAD and of CLAPnq answerable questions (the lower); "
            f"'yes_no' = the lowest max(p_yes, p_no) at which spoken yes/no answers are "
            f">= {evaluate.YES_NO_PRECISION:.0%} right on SciFact calibration claims and SQuAD "
            "calibration questions asked as yes/no, pooled",
        },
        "calibration_figures": figures(calib_rows, model, threshold)
        | {f"yes_no_{k}": evaluate.yes_no_figures(v, t_yes_no) for k, v in yn.items()},
        "training_figures": figures(train_rows, model, threshold),
        "seconds": round(time.time() - t0, 1),
    }
    path = folder / combine.FILE_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return record
