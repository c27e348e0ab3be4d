"""The learned reader: its split, its manifest, its weights and its training command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.config import PROJECT_ROOT
from qa.errors import ModelNotFound

READER = PROJECT_ROOT / "models" / "reader"
needs_reader = pytest.mark.skipif(
    not (READER / "manifest.json").is_file(), reason="models/reader not trained yet"
)


def _manifest() -> dict:
    return json.loads((READER / "manifest.json").read_text(encoding="utf-8"))


def test_split_is_deterministic_and_by_article():
    from qa.train import split

    titles = split.squad_test_titles()
    assert titles == split.squad_test_titles()
    assert len(titles) == 12  # a quarter of the 48 SQuAD dev articles
    ids = split.clapnq_test_ids()
    assert 250 <= len(ids) <= 350  # about half of the 600 CLAPnq questions
    assert all(split.clapnq_part(i) == split.TEST for i in ids)


def test_importing_the_reader_is_instant():
    import subprocess
    import sys

    code = "import sys, qa.models.reader; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT).returncode == 0


def test_missing_or_damaged_reader_is_one_clear_error(tmp_path):
    from qa.models.reader import Reader, load_network

    with pytest.raises(ModelNotFound, match="no reader model"):
        Reader(tmp_path / "nowhere")
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelNotFound, match="unreadable"):
        Reader(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "qa-reader", "format_version": 1}')
    with pytest.raises(ModelNotFound, match="incomplete"):
        load_network(tmp_path)


def test_no_test_part_question_or_passage_in_training():
    from qa.eval.datasets import load_dataset
    from qa.train import split
    from qa.train.reader import TrainConfig, build_examples

    examples, _ = build_examples(TrainConfig())
    squad = load_dataset("squad")
    clap = load_dataset("clapnq")
    title_of = {p.pid: p.title for p in squad.passages}
    test_qids = {
        q.qid
        for q in squad.questions
        if split.squad_parts()[title_of[q.relevant[0]]] != split.TRAIN
    }
    test_qids |= {q.qid for q in clap.questions if split.clapnq_part(q.qid) != split.TRAIN}
    test_texts = {p.text for p in squad.passages if split.squad_parts()[p.title] != split.TRAIN}
    test_texts |= {
        p.text
        for q in clap.questions
        if split.clapnq_part(q.qid) == split.TEST
        for p in clap.passages
        if p.pid in q.context
    }
    assert examples
    for e in examples:
        assert e.qid not in test_qids
        assert e.second not in test_texts
        # a support pair's sentence is no test passage's sentence (fragments such as
        # "[citation needed]" occur everywhere, so only real sentences are checked)
        if e.source.startswith("support") and len(e.second) >= 40:
            assert not any(e.second in t for t in test_texts)


@needs_reader
def test_manifest_records_base_split_and_figures():
    from qa.models.reader import sha256_file
    from qa.train import split
    from qa.train.reader import base_weights_file

    m = _manifest()
    assert m["format"] == "qa-reader" and m["format_version"] == 1
    assert m["base_weights_sha256"] == sha256_file(base_weights_file())
    assert m["weights_sha256"] == sha256_file(READER / m["weights_file"])
    assert m["split"]["squad_test_titles"] == split.squad_test_titles()
    assert m["split"]["clapnq_test_ids"] == split.clapnq_test_ids()
    assert set(m["thresholds"]) >= {"answer", "support", "yes_no_confidence"}
    assert sum(p.stat().st_size for p in READER.iterdir()) < 60 * 2**20


@pytest.fixture(scope="module")
def reader():
    from qa.models.reader import Reader

    return Reader(READER)


PASSAGE = (
    "Ford was founded in 1903 by Henry Ford. "
    "The company's chief executive is Jim Farley, who took over in 2020. "
    "Its headquarters are in Dearborn, Michigan."
)


def _sentences(text: str):
    from qa.ingest.chunking import split_sentences

    return split_sentences(text)


@pytest.mark.slow
@needs_reader
def test_reader_prefers_the_answering_sentence_and_span(reader):
    [r] = reader.read("Who is the CEO of Ford?", [(PASSAGE, _sentences(PASSAGE))])
    assert r.best.index == 1
    assert "Jim Farley" in PASSAGE[r.span_start : r.span_end]
    assert len(PASSAGE[r.span_start : r.span_end]) < 30
    [r] = reader.read("Where is Ford based?", [(PASSAGE, _sentences(PASSAGE))])
    assert r.best.index == 2


@pytest.mark.slow
@needs_reader
def test_reader_is_deterministic_and_batched_like_single(reader):
    other = "Bananas are yellow. They grow in the tropics."
    q = "When was Ford founded?"
    a = reader.read(q, [(PASSAGE, _sentences(PASSAGE)), (other, _sentences(other))])
    b = reader.read(q, [(PASSAGE, _sentences(PASSAGE)), (other, _sentences(other))])
    assert a == b
    [single] = reader.read(q, [(PASSAGE, _sentences(PASSAGE))])
    assert [s.prob for s in single.sentences] == pytest.approx(
        [s.prob for s in a[0].sentences], abs=1e-4
    )
    assert a[0].best.prob > a[1].best.prob
    good = reader.support(q, "Ford was founded in 1903.", "Ford was founded in 1903 by Henry Ford.")
    assert good == reader.support(
        q, "Ford was founded in 1903.", "Ford was founded in 1903 by Henry Ford."
    )


@pytest.mark.slow
def test_training_command_runs_end_to_end(tmp_path):
    from qa.models.reader import Reader
    from qa.train.__main__ import main

    out = tmp_path / "reader"
    assert main(["reader", "--out", str(out), "--limit", "16", "--quiet", "--batch-size", "8"]) == 0
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["format"] == "qa-reader" and m["training_steps"] == 2
    [r] = Reader(out).read("Who is the CEO?", [(PASSAGE, _sentences(PASSAGE))])
    assert len(r.sentences) == 3 and 0.0 <= r.best.prob <= 1.0


def test_reader_records_are_typed():
    from dataclasses import fields

    from qa.models.reader import Reading, SentenceScore

    assert [f.name for f in fields(SentenceScore)] == ["index", "start", "end", "prob"]
    assert "span_start" in {f.name for f in fields(Reading)}
    assert Path(__file__).name == "test_reader.py"
