"""`qa eval` from the command line: JSON with every retriever, the report files, and one-line
errors for bad input."""

import json
import subprocess
import sys

import pytest

from qa.eval.answers import AnswerResult, CitationJudgement, score_answers
from qa.eval.datasets import Dataset, default_data_dir
from qa.eval.report import markdown, table, to_json, write_out
from qa.eval.retrieval import QuestionResult, score
from qa.eval.run import EvalRun, RunInfo

DATA = default_data_dir()
needs_data = pytest.mark.skipif(
    not (DATA / "squad" / "dev-v1.1.json.zip").is_file(), reason="shared/eval-data not present"
)
PNG = b"\x89PNG\r\n\x1a\n"


def qa_eval(*argv, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qa.cli", "eval", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=1800,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nope"], "unknown data set 'nope'"),
        (["squad", "--data", "/nonexistent/eval-data"], "no evaluation data folder"),
        (["squad", "--limit", "0"], "--limit must be at least 1"),
        (["squad", "--limit", "many"], "invalid int value"),
        (["squad", "--retriever", "magic"], "unknown retriever magic"),
        ([], "required: DATASET"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, argv, message):
    done = qa_eval(*argv, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (tmp_path / "eval-results").exists()  # nothing written


def _hand_made_run() -> EvalRun:
    ds = Dataset("squad", (), (), "contains")
    rankings = {
        "bm25": [QuestionResult("a", (True,), 1, ("p1",), 0.002)],
        "hybrid": [QuestionResult("a", (False, True), 1, ("p2", "p1"), 0.01)],
    }
    scores = [score(ds, name, r, chunks=3) for name, r in rankings.items()]
    judged = (CitationJudgement(1, "p1", True, True),)
    results = [
        AnswerResult("a", "q?", True, False, "x [1]", 1.0, 1.0, True, judged, {"retrieve": 0.2}),
        AnswerResult("b", "q?", True, True, "no", 0.0, 0.0, False, (), {"retrieve": 0.1}),
    ]
    answers = score_answers(ds, "extractive", results, seconds=0.3)
    info = RunInfo(
        "squad", "extractive", 2, 10570, 2, 2, 3, 2, 0, "m", 256, 32, "weighted", 5, None,
        "default", "/tmp/x",
    )  # fmt: skip
    return EvalRun(info, scores, list(rankings.values()), answers, results)


def test_report_files_from_a_hand_made_run(tmp_path):
    run = _hand_made_run()
    paths = write_out(tmp_path / "out", run)
    names = {p.name for p in paths}
    assert {"summary.json", "report.md", "recall_at_k.png", "latency.png"} <= names
    assert {"squad-bm25.jsonl", "squad-hybrid.jsonl", "answers.jsonl"} <= names
    for png in ("recall_at_k.png", "latency.png"):
        assert (tmp_path / "out" / png).read_bytes()[:8] == PNG
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| bm25 | 1.000 |" in md and "| hybrid | 0.000 | 1.000 |" in md
    assert "| answered | 0.500 |" in md and "| citation precision | 1.000 |" in md
    assert "![recall@k](recall_at_k.png)" in md and md == markdown(run)
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == to_json(run)
    text = table(run)
    assert "answered 0.500" in text and "precision 1.000" in text


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """One real small run: 20 SQuAD questions over 60 passages, extractive, every retriever."""
    tmp = tmp_path_factory.mktemp("eval")
    done = qa_eval(
        "squad", "--limit", "20", "--mode", "extractive", "--retriever", "all", "--json",
        "--max-passages", "60", "--cache", tmp / "cache", "--out", tmp / "out",
    )  # fmt: skip
    return done, tmp / "out"


@needs_data
@pytest.mark.slow
def test_cli_prints_json_with_the_three_retrievers(small_run):
    done, _ = small_run
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = {r["retriever"]: r for r in report["retrieval"]}
    assert set(rows) == {"dense", "bm25", "hybrid"}
    for row in rows.values():
        assert row["questions"] == 20 and row["passages"] == 60
        assert 0 <= row["recall@1"] <= row["recall@5"] <= row["recall@20"] <= 1
        assert len(row["recall_curve"]) == 20
    answers = report["answers"]
    assert answers["mode"] == "extractive" and answers["retriever"] == "hybrid"
    assert answers["questions"] == 20 and 0 <= answers["citations"]["precision"] <= 1
    assert {x["stage"] for x in answers["latency"]} == {"retrieve", "total"}
    assert report["settings"]["mode"] == "extractive"
    assert any("hybrid" in note for note in report["settings"]["notes"])


@needs_data
@pytest.mark.slow
def test_cli_writes_the_report_and_plots(small_run):
    done, out = small_run
    assert done.returncode == 0, done.stderr
    for png in ("recall_at_k.png", "latency.png"):
        data = (out / png).read_bytes()
        assert data[:8] == PNG and len(data) > 5000
    md = (out / "report.md").read_text()
    assert md.startswith("# qa eval squad") and "## Answers" in md and "## Latency" in md
    assert len((out / "answers.jsonl").read_text().splitlines()) == 20
    assert json.loads((out / "summary.json").read_text()) == json.loads(done.stdout)


def test_help_documents_the_default_limits():
    done = qa_eval("--help")
    assert done.returncode == 0
    assert "200 in" in done.stdout and "50 in llm mode" in done.stdout
    assert "eval-results" in done.stdout
