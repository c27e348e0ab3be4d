"""A small real retrieval evaluation: SQuAD questions over their paragraphs and distractors,
indexed with the default embedder through the normal pipeline."""

import json

import pytest

from qa.eval.cli import main
from qa.eval.datasets import default_data_dir, load_dataset

DATA = default_data_dir()
needs_data = pytest.mark.skipif(
    not (DATA / "squad" / "dev-v1.1.json.zip").is_file(), reason="shared/eval-data not present"
)

# Measured at 50 questions / 200 passages, seed 0, chunk_tokens 160: recall@5 is 0.98 for
# dense, bm25 and hybrid (49 of 50); the floor leaves a margin of 4 questions.
FLOOR = 0.90


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
    assert (len(clap.passages), len(clap.questions)) == (597, 300)
    sci = load_dataset("scifact")
    assert (len(sci.passages), len(sci.questions)) == (5183, 300)
    assert sum(len(q.relevant) for q in sci.questions) == 339


@needs_data
@pytest.mark.slow
def test_smoke_eval_on_squad(tmp_path, capsys):
    argv = ["squad", "--limit", "50", "--max-passages", "200", "--seed", "0"]
    argv += ["--cache", str(tmp_path / "cache"), "--json", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "indexing 200 squad passages" in out.err
    report = json.loads(out.out)
    rows = {r["retriever"]: r for r in report["results"]}
    assert set(rows) == {"dense", "bm25", "hybrid"}
    for row in rows.values():
        assert row["questions"] == 50 and row["passages"] == 200
        assert row["recall@5"] >= FLOOR, row
        assert row["recall@1"] <= row["recall@5"] <= row["recall@10"] <= row["recall@20"]
        assert row["recall@1"] <= row["mrr@10"] <= row["recall@10"]
    lines = (tmp_path / "out" / "squad-hybrid.jsonl").read_text().splitlines()
    assert len(lines) == 50
    # a second run reuses the cached index
    assert main(argv[:-2] + ["--retriever", "bm25"]) == 0
    again = capsys.readouterr()
    assert "indexing" not in again.err
    assert json.loads(again.out)["results"][0]["recall@5"] == rows["bm25"]["recall@5"]
