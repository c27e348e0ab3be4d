"""The one place that decides which evaluation questions the reader may learn from.

Rules (mandatory, see the reader issue):
- SQuAD v1.1 dev is split BY ARTICLE: titles sorted by sha256 of the title; the first
  quarter (12 of 48) is the test part, the next `SQUAD_CALIB_TITLES` titles are a held-out
  calibration slice of the train part (thresholds, early checks), the rest is trained on.
- CLAPnq dev is split BY QUESTION id: a bucket 0-99 from sha256 of the id; buckets below 50
  are the test part, 50-64 the calibration slice, 65-99 are trained on. A train-part question
  whose passage is also the passage of a test-part question is dropped from training.
- SciFact claims_train may be trained on (the reported SciFact set is claims_validation).

`qa eval` imports `squad_test_titles()`, `clapnq_test_ids()` and `is_test()` to report on the
test part only; `models/reader/manifest.json` records the same lists, and a test checks that.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from qa.eval.datasets import Dataset, Question, load_dataset

SQUAD_TEST_FRACTION = 0.25  # 12 of 48 articles
SQUAD_CALIB_TITLES = 4  # of the 36 train-part articles, held out for calibration
CLAPNQ_TEST_BUCKETS = 50  # buckets [0, 50) of 100: about half the questions
CLAPNQ_CALIB_BUCKETS = 15  # buckets [50, 65): the calibration slice
SCIFACT_CALIB_BUCKETS = 20  # claims_train claims in buckets [0, 20): held out for checks

TEST, CALIB, TRAIN = "test", "calib", "train"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def squad_title_order(titles: list[str]) -> list[str]:
    """Titles in their fixed split order: by sha256 of the title (ties by title)."""
    return sorted(set(titles), key=lambda t: (_digest(t), t))


def squad_part_of_titles(titles: list[str]) -> dict[str, str]:
    """title -> "test" | "calib" | "train" for the given article titles."""
    order = squad_title_order(titles)
    n_test = round(len(order) * SQUAD_TEST_FRACTION)
    out = {}
    for i, title in enumerate(order):
        out[title] = TEST if i < n_test else CALIB if i < n_test + SQUAD_CALIB_TITLES else TRAIN
    return out


def clapnq_part(qid: str) -> str:
    """ "test" | "calib" | "train" for a CLAPnq question id (a string of digits)."""
    bucket = int(_digest(str(qid))[:8], 16) % 100
    if bucket < CLAPNQ_TEST_BUCKETS:
        return TEST
    return CALIB if bucket < CLAPNQ_TEST_BUCKETS + CLAPNQ_CALIB_BUCKETS else TRAIN


def scifact_train_part(claim_id: str) -> str:
    """ "calib" | "train" for a SciFact claims_train claim id (claims_validation is never
    trained on: it is not read by `qa.train.data`)."""
    bucket = int(_digest("scifact:" + str(claim_id))[:8], 16) % 100
    return CALIB if bucket < SCIFACT_CALIB_BUCKETS else TRAIN


@lru_cache(maxsize=4)
def _squad(data_dir: str | None) -> Dataset:
    return load_dataset("squad", data_dir)


@lru_cache(maxsize=4)
def _clapnq(data_dir: str | None) -> Dataset:
    return load_dataset("clapnq", data_dir)


def _key(data_dir: str | Path | None) -> str | None:
    return None if data_dir is None else str(data_dir)


@lru_cache(maxsize=4)
def squad_parts(data_dir: str | Path | None = None) -> dict[str, str]:
    """SQuAD article title (as `qa.eval.datasets` spells it) -> part."""
    ds = _squad(_key(data_dir))
    return squad_part_of_titles([p.title for p in ds.passages])


def squad_test_titles(data_dir: str | Path | None = None) -> list[str]:
    """The SQuAD dev article titles of the test part, in split order."""
    parts = squad_parts(data_dir)
    return [t for t in squad_title_order(list(parts)) if parts[t] == TEST]


def clapnq_test_ids(data_dir: str | Path | None = None) -> list[str]:
    """The CLAPnq dev question ids of the test part, in data set order."""
    return [q.qid for q in _clapnq(_key(data_dir)).questions if clapnq_part(q.qid) == TEST]


def part(dataset_name: str, question: Question, data_dir: str | Path | None = None) -> str:
    """Which part a question of `qa.eval.datasets` belongs to. SciFact: always "test"
    (claims_validation is the reported set; training uses claims_train, read separately)."""
    if dataset_name == "squad":
        title_of = _squad_title_of_pid(_key(data_dir))
        return squad_parts(data_dir)[title_of[question.relevant[0]]]
    if dataset_name == "clapnq":
        return clapnq_part(question.qid)
    if dataset_name == "scifact":
        return TEST
    raise ValueError(f"unknown data set {dataset_name!r}")


@lru_cache(maxsize=4)
def _squad_title_of_pid(data_dir: str | None) -> dict[str, str]:
    return {p.pid: p.title for p in _squad(data_dir).passages}


def is_test(dataset_name: str, question: Question, data_dir: str | Path | None = None) -> bool:
    """True when `question` is in the test part (the only part `qa eval` should report)."""
    return part(dataset_name, question, data_dir) == TEST


def test_part(dataset: Dataset, data_dir: str | Path | None = None) -> Dataset:
    """`dataset` cut to its test-part questions (passages kept: they are the corpus)."""
    from dataclasses import replace

    keep = tuple(q for q in dataset.questions if is_test(dataset.name, q, data_dir))
    return replace(dataset, questions=keep)
