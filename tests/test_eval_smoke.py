"""A small real evaluation: 50 SQuAD questions over their paragraphs and distractors, indexed
with the default embedder through the normal pipeline, answered in extractive mode."""

import json

import pytest

from qa.eval.cli import main
from qa.eval.datasets import default_data_dir, load_dataset
from qa.eval.run import EvalRequest, run_eval

DATA = default_data_dir()
needs_data = pytest.mark.skipif(
    not (DATA / "squad" / "dev-v1.1.json.zip").is_file(), reason="shared/eval-data not present"
)

# Measured at 50 questions / 200 passages, seed 0, 256-token chunks, extractive mode:
# recall@5 0.98 for dense, bm25 and hybrid (49 of 50); citation precision 0.872 (41 of 47
# citations), 0.979 in the gold paragraph; answered 0.94. The floors leave a margin of about
# three questions (recall) and four citations (precision).
RECALL5_FLOOR = 0.92
CITATION_PRECISION_FLOOR = 0.80
CITATION_PASSAGE_FLOOR = 0.90
ANSWERED_FLOOR = 0.85


@needs_data
@pytest.mark.slow
def test_loaders_read_the_real_files():
    squad = load_dataset("squad")
    assert (len(squad.passages), len(squad.questions)) == (2067, 10570)
    p = {x.pid: x for x in squad.passages}
    for q in squad.questions[:200]:
        assert q.spans and q.relevant == (q.spans[0].pid,)
        for span in q.spans:
            assert p[span.pid].text[span.start : span.end] in q.answers
    clap = load_dataset("clapnq")
    assert (len(clap.passages), len(clap.questions)) == (597, 600)
    yes = [q for q in clap.questions if q.answerable]
    no = [q for q in clap.questions if not q.answerable]
    assert len(yes) == len(no) == 300
    assert all(q.answers and q.context == q.relevant for q in yes)
    assert all(not q.answers and not q.spans and len(q.context) == 1 for q in no)
    sample = clap.sample(100, seed=0)
    assert sum(q.answerable for q in sample.questions) == 50
    sci = load_dataset("scifact")
    assert (len(sci.passages), len(sci.questions)) == (5183, 300)
    assert sum(len(q.relevant) for q in sci.questions) == 339


@needs_data
@pytest.mark.slow
def test_smoke_eval_on_squad(tmp_path, capsys):
    request = EvalRequest(
        "squad", limit=50, seed=0, max_passages=200, mode="extractive", cache=str(tmp_path)
    )
    run = run_eval(request)
    assert run.info.passages == 200 and run.info.questions == 50
    # answers are scored on the test part of the reader's split only, and the run says so
    from qa.train.split import is_test

    assert run.info.part == "test" and any("test part" in n for n in run.info.notes)
    names = {r.qid for r in run.answer_results}
    full = load_dataset("squad")
    assert all(is_test("squad", q) for q in full.questions if q.qid in names)
    rows = {s.retriever: s for s in run.retrieval}
    assert set(rows) == {"dense", "bm25", "hybrid"}
    for s in rows.values():
        assert s.questions == 50
        assert s.recall[5] >= RECALL5_FLOOR, s
        assert s.recall[1] <= s.recall[5] <= s.recall[10] <= s.recall[20]
        assert s.recall[1] <= s.mrr10 <= s.recall[10]
        assert list(s.curve) == sorted(s.curve) and s.curve[4] == s.recall[5]
    a = run.answers
    assert a.mode == "extractive" and a.questions == 50
    assert a.answered >= ANSWERED_FLOOR, a
    assert a.citations.precision >= CITATION_PRECISION_FLOOR, a.citations
    assert a.citations.precision_passage >= CITATION_PASSAGE_FLOOR, a.citations
    assert a.citations.recall >= CITATION_PRECISION_FLOOR, a.citations
    assert 0 < a.f1 < 1 and a.em is not None
    assert a.refusal is None  # SQuAD questions are all answerable
    assert [x.stage for x in a.latency] == ["retrieve", "total"]  # extractive: no model
    assert len(run.answer_results) == 50

    # a second run reuses the cached index, and retrieval-only is the same ranking
    capsys.readouterr()
    argv = ["squad", "--limit", "50", "--seed", "0", "--max-passages", "200", "--mode", "none"]
    argv += ["--retriever", "bm25", "--cache", str(tmp_path), "--json", "--part", "test"]
    assert main(argv + ["--out", str(tmp_path / "out")]) == 0
    again = capsys.readouterr()
    assert "indexing" not in again.err
    report = json.loads(again.out)
    assert report["answers"] is None
    assert report["retrieval"][0]["recall@5"] == round(rows["bm25"].recall[5], 4)
