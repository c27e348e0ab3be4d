"""The learned evidence scorer (qa.answer.combine) with a fake reader: fitting, the file
format, features with exact offsets, and the engine choosing and refusing with it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_reading import FakeReader

from qa import Engine, Index
from qa.answer import combine
from qa.answer.combine import (
    QUESTION_FEATURES,
    SENTENCE_FEATURES,
    Combiner,
    Logistic,
    fit_logistic,
)
from qa.answer.pipeline import Options
from qa.errors import ModelNotFound

LEARNED = Options(evidence="learned", refusal="scorer")  # the scorer alone


def test_fit_logistic_learns_the_direction_of_each_feature():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] - 2 * x[:, 1] + 0.3 * rng.normal(size=400) > 0).astype(float)
    model = fit_logistic(x, y, ("a", "b", "c"))
    assert model.weights[0] > 0 > model.weights[1]
    assert abs(model.weights[2]) < abs(model.weights[0]) / 3  # noise is not learned
    accuracy = ((model.probs(x) > 0.5) == (y > 0.5)).mean()
    assert accuracy > 0.9


def test_fit_logistic_survives_a_constant_feature_and_separable_data():
    x = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    y = np.array([0.0, 0.0, 1.0, 1.0])
    model = fit_logistic(x, y, ("a", "const"))
    assert np.isfinite(model.weights).all() and model.weights[1] == 0.0
    assert model.probs(np.array([3.0, 1.0]))[0] > 0.5 > model.probs(np.array([0.0, 1.0]))[0]


def _logistic(names, weights, bias=0.0):
    n = len(names)
    return Logistic(tuple(names), np.zeros(n), np.ones(n), np.array(weights, float), bias)


def write_combiner(folder, reader_sha, sentence_w, question_w, threshold, question_bias=0.0):
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "format": combine.FORMAT,
        "format_version": combine.FORMAT_VERSION,
        "reader_weights_sha256": reader_sha,
        "sentence_model": _logistic(SENTENCE_FEATURES, sentence_w).to_dict(),
        "answerability_model": _logistic(QUESTION_FEATURES, question_w, question_bias).to_dict(),
        "thresholds": {"answer": threshold, "how": "test"},
    }
    (folder / combine.FILE_NAME).write_text(json.dumps(record))
    return folder


def test_the_file_round_trips_and_bad_files_get_one_line_errors(tmp_path):
    w = [1.0] + [0.0] * (len(SENTENCE_FEATURES) - 1)
    folder = write_combiner(tmp_path / "r", "abc", w, [1.0] + [0.0] * 5, 0.4)
    loaded = Combiner.load(folder)
    assert loaded.thresholds == {"answer": 0.4}
    assert loaded.sentence.names == SENTENCE_FEATURES
    with pytest.raises(ModelNotFound, match="qa train combiner"):
        Combiner.load(tmp_path / "missing")
    bad = json.loads((folder / combine.FILE_NAME).read_text())
    bad["sentence_model"]["features"] = ["other"]
    (folder / combine.FILE_NAME).write_text(json.dumps(bad))
    with pytest.raises(ModelNotFound, match="unreadable") as info:
        Combiner.load(folder)
    assert "\n" not in str(info.value)


class FolderReader(FakeReader):
    """The fake reader with a folder and a manifest, as the pipeline looks them up."""

    def __init__(self, folder, sha="fake-weights", **kw) -> None:
        super().__init__(**kw)
        self.folder = folder
        self.manifest = {"weights_sha256": sha}


@pytest.fixture
def index(docs, settings, fake_embedder):
    index = Index.build([docs], settings.index_dir, settings=settings, embedder=fake_embedder)
    yield index
    index.close()


@pytest.fixture(autouse=True)
def fresh_cache():
    combine._LOADED.clear()
    yield
    combine._LOADED.clear()


def test_features_slice_the_documents_and_carry_the_readings(index):
    q = "Which river is the longest in Africa?"
    hits = index.search(q, 3)
    f = combine.features(q, hits, index.document_text, index.embedder, FakeReader())
    assert f.matrix.shape == (len(f.sentences), len(SENTENCE_FEATURES))
    assert np.isfinite(f.matrix).all()
    for s, (hit, reading) in zip(f.sentences, f.readings, strict=True):
        assert index.document_text(s.source)[s.start : s.end] == s.text
        assert hit.source == s.source and hit.start <= s.start < s.end <= hit.end
        assert reading.sentences  # the reading of the passage it was read in
    # exactly one reader-top sentence per passage read
    tops = f.matrix[:, SENTENCE_FEATURES.index("reader_top_in_passage")]
    assert tops.sum() == len({hit.chunk_id for hit, _ in f.readings})
    assert f.matrix[:, SENTENCE_FEATURES.index("reader_margin")].max() == 0.0


def test_the_engine_chooses_and_refuses_with_the_fitted_scorer(index, tmp_path):
    q = "Which river is the longest in Africa?"
    only_reader = [1.0] + [0.0] * (len(SENTENCE_FEATURES) - 1)
    # answerability = sigmoid(best sentence log-odds): the fake reader gives the Nile 0.75
    folder = write_combiner(tmp_path / "r", "fake-weights", only_reader, [1.0] + [0.0] * 5, 0.5)
    reader = FolderReader(folder, spans={q: "The Nile"})
    answer = Engine(index=index, reader=reader).ask(q, options=LEARNED)
    assert not answer.refused
    (c,) = answer.citations
    assert c.quote == "The Nile is the longest river in Africa."
    assert answer.short is not None and answer.short.text == "The Nile"
    assert index.document_text(c.source)[c.start : c.end] == c.quote

    combine._LOADED.clear()
    strict = write_combiner(tmp_path / "s", "fake-weights", only_reader, [1.0] + [0.0] * 5, 0.9)
    refused = Engine(index=index, reader=FolderReader(strict)).ask(q, options=LEARNED)
    assert refused.refused and refused.citations == ()


def test_with_refusal_both_the_similarity_heuristics_can_also_decline(index, tmp_path, monkeypatch):
    """`refusal="both"`: the scorer accepts, but the heuristics' answerability is under their
    own threshold, so the answer is declined; with "scorer" (the default) it is not."""
    from dataclasses import replace

    import qa.answer.pipeline as pipeline

    q = "Which river is the longest in Africa?"
    only_reader = [1.0] + [0.0] * (len(SENTENCE_FEATURES) - 1)
    folder = write_combiner(tmp_path / "r", "fake-weights", only_reader, [1.0] + [0.0] * 5, 0.5)
    engine = Engine(index=index, reader=FolderReader(folder, spans={q: "The Nile"}))
    assert not engine.ask(q, options=replace(LEARNED, refusal="both")).refused  # both accept
    # the heuristics' answerability beside the scorer's is the one they give on their own
    reader = engine.reader()
    alone = pipeline.retrieve(index, q, 5, reader, "heuristic")
    beside = pipeline.retrieve(index, q, 5, reader, "learned")
    assert beside.similarity == pytest.approx(alone.answerability)
    assert alone.similarity is None and beside.answerability != alone.answerability
    strict = replace(pipeline.heuristic_thresholds(), extractive_min=2.0, llm_min=2.0)
    monkeypatch.setattr(pipeline, "heuristic_thresholds", lambda: strict)
    assert engine.ask(q, options=LEARNED).refused is False  # the scorer alone decides
    declined = engine.ask(q, options=replace(LEARNED, refusal="both"))
    assert declined.refused and declined.citations == ()


def test_the_two_gates_use_the_pair_calibrated_together(index, tmp_path):
    """With "both_answer" / "both_similarity" in combiner.json, refusal="both" uses them in
    extractive mode instead of each gate's own threshold."""
    from dataclasses import replace

    q = "Which river is the longest in Africa?"
    only_reader = [1.0] + [0.0] * (len(SENTENCE_FEATURES) - 1)
    folder = write_combiner(tmp_path / "r", "fake-weights", only_reader, [1.0] + [0.0] * 5, 0.5)
    path = folder / combine.FILE_NAME
    record = json.loads(path.read_text())
    both = replace(LEARNED, refusal="both")
    for similarity_min, refused in ((0.0, False), (5.0, True)):
        combine._LOADED.clear()
        record["thresholds"].update(both_answer=0.0, both_similarity=similarity_min)
        path.write_text(json.dumps(record))
        engine = Engine(index=index, reader=FolderReader(folder, spans={q: "The Nile"}))
        assert engine.ask(q, options=both).refused is refused
        assert engine.ask(q, options=LEARNED).refused is False  # the scorer alone: unchanged


def test_the_gate_pair_is_chosen_on_both_data_sets():
    from qa.eval.gates import Signal, choose, rates

    # CLAPnq: answerables high on both signals but one; unanswerables low on one or the other
    clap = [Signal("clapnq", True, 0.9, 0.9) for _ in range(19)] + [
        Signal("clapnq", True, 0.2, 0.2)
    ]
    clap += [Signal("clapnq", False, 0.1, 0.9) for _ in range(5)]
    clap += [Signal("clapnq", False, 0.9, 0.1) for _ in range(5)]
    squad = [Signal("squad", True, 0.8, 0.8) for _ in range(10)]
    p = choose(clap + squad)
    assert p.clapnq_declined == 1.0 and p.clapnq_answered >= 0.9 and p.squad_answered == 1.0
    assert rates(clap + squad, 0.0, 0.0).clapnq_declined == 0.0
    # SQuAD's answerables must be answered too: a cut above them is not allowed
    squad_low = [Signal("squad", True, 0.15, 0.15) for _ in range(10)]
    p = choose(clap + squad_low)
    assert p.squad_answered >= 0.9 and p.scorer_min <= 0.15 and p.similarity_min <= 0.15


def test_a_scorer_fitted_for_other_reader_weights_is_not_used(index, tmp_path, caplog):
    q = "Which river is the longest in Africa?"
    w = [1.0] + [0.0] * (len(SENTENCE_FEATURES) - 1)
    folder = write_combiner(tmp_path / "r", "other-weights", w, [1.0] + [0.0] * 5, 0.99)
    reader = FolderReader(folder)
    assert combine.for_reader(reader) is None
    assert "other reader weights" in caplog.text
    # the heuristics decide instead: the question is answered, not refused at 0.99
    assert not Engine(index=index, reader=reader).ask(q, options=LEARNED).refused


@pytest.mark.slow
def test_fitting_runs_end_to_end_on_the_sample_corpus_with_the_real_reader(corpus_index):
    """The training steps of `qa train combiner` (features, labels, both fits, calibration,
    figures) on a handful of questions: the fitted scorer ranks the answering sentence first."""
    from qa.eval.datasets import Question
    from qa.models.reader import Reader, default_reader_path
    from qa.train.combiner import Asked, calibrate, figures, fit, label

    reader = Reader(default_reader_path())
    source = corpus_index.documents()[0].source
    pid_of = {source: "ford"}
    asked = []
    for qid, (q, answer) in enumerate(
        [
            ("Did Ford deny the Xiaomi report?", "both denied the report"),
            ("Who is Ford's chief executive?", "Jim Farley"),
            ("Which two phone companies did Farley mention?", "Huawei and Xiaomi"),
            ("What is the capital of Peru?", None),
        ]
    ):
        question = Question(
            str(qid), q, ("ford",) if answer else (), (), (answer,) if answer else ()
        )
        hits = corpus_index.search(q, 5)
        f = combine.features(q, hits, corpus_index.document_text, corpus_index.embedder, reader)
        y = label(f, question, "contains", pid_of)
        assert (y.sum() > 0) == bool(answer)
        asked.append(Asked("sample", str(qid), "answerable" if answer else "unanswerable", f, y))
    sentence, question_model = fit(asked, l2=1.0)
    scorer = Combiner(sentence, question_model, {}, {})
    threshold = calibrate(asked, scorer)
    fig = figures(asked, scorer, threshold)["sample"]
    assert fig["answerable"] == 3 and fig["unanswerable"] == 1
    assert fig["precision_at_1"] == 1.0  # on its own training questions


def test_the_shipped_scorer_belongs_to_the_shipped_reader():
    from qa.models.reader import default_reader_path, read_manifest, sha256_file

    folder = default_reader_path()
    record = json.loads((folder / combine.FILE_NAME).read_text(encoding="utf-8"))
    assert record["format"] == combine.FORMAT and record["format_version"] == 1
    reader = read_manifest(folder)
    assert record["reader_weights_sha256"] == sha256_file(folder / reader["weights_file"])
    assert record["training_data_sha256"] == reader["training_data_sha256"]
    assert 0.0 < record["thresholds"]["answer"] < 1.0
    assert "test part never used" in record["split"]
    Combiner.load(folder)  # and it parses


def test_the_scorer_is_fitted_and_calibrated_on_train_part_questions_only():
    import random

    from qa.train import split
    from qa.train.combiner import _questions

    rng = random.Random(0)
    for name in ("squad", "clapnq"):
        for part in (split.TRAIN, split.CALIB):
            qs = _questions(name, part, 50, rng)
            assert qs and all(split.part(name, q) == part for q in qs)
            assert not any(split.is_test(name, q) for q in qs)
