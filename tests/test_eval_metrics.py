"""Metric functions on hand-made cases with known values, and the data set loaders."""

import math

import pytest

from qa.eval.datasets import Dataset, Passage, Question, Span, parse_sentence_list
from qa.eval.metrics import (
    exact_match,
    ndcg_at_k,
    normalize_answer,
    recall_at_k,
    reciprocal_rank,
    token_f1,
)
from qa.eval.retrieval import Item, QuestionResult, judge, score

F, T = False, True


def test_recall_is_a_hit_rate_with_one_relevant_item():
    assert recall_at_k([F, F, T], 1) == 0.0
    assert recall_at_k([F, F, T], 2) == 0.0
    assert recall_at_k([F, F, T], 3) == 1.0
    assert recall_at_k([T, T, T], 20) == 1.0  # overlapping chunks with the answer count once
    assert recall_at_k([], 5) == 0.0


def test_recall_with_several_relevant_items_is_the_share_found():
    assert recall_at_k([T, F, T, F], 2, n_relevant=3) == pytest.approx(1 / 3)
    assert recall_at_k([T, F, T, F], 4, n_relevant=3) == pytest.approx(2 / 3)
    assert recall_at_k([T], 5, n_relevant=0) == 0.0


def test_reciprocal_rank_is_cut_at_k():
    assert reciprocal_rank([T, F]) == 1.0
    assert reciprocal_rank([F, F, F, T]) == 0.25
    assert reciprocal_rank([F] * 10 + [T], k=10) == 0.0
    assert reciprocal_rank([F] * 9 + [T], k=10) == pytest.approx(0.1)


def test_ndcg_known_values():
    assert ndcg_at_k([T, F, F]) == 1.0
    assert ndcg_at_k([F, T]) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k([F, F, T]) == 0.5  # 1/log2(4)
    # two relevant documents, found at ranks 1 and 3: (1 + 1/2) / (1 + 1/log2(3))
    assert ndcg_at_k([T, F, T], 10, 2) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    # with one relevant item, extra hits earn nothing: never above 1
    assert ndcg_at_k([T, T, T]) == 1.0
    assert ndcg_at_k([F] * 10 + [T]) == 0.0
    # more relevant items than k: the ideal is capped at k
    assert ndcg_at_k([T] * 10, 10, 15) == pytest.approx(1.0)


def test_squad_normalisation_follows_the_official_script():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("Theatre") == "theatre"  # articles only as whole words


def test_exact_match_takes_the_best_gold_answer():
    assert exact_match("the Denver Broncos", ["Denver Broncos", "Broncos"]) == 1.0
    assert exact_match("Broncos.", "broncos") == 1.0
    assert exact_match("Denver", ["Denver Broncos"]) == 0.0
    assert exact_match("x", []) == 0.0


def test_token_f1_known_values():
    # pred 2 tokens, gold 3 tokens, 2 shared: p = 1, r = 2/3, f1 = 0.8
    assert token_f1("Denver Broncos", "the Denver Broncos team") == pytest.approx(0.8)
    assert token_f1("Carolina Panthers", "Denver Broncos") == 0.0
    assert token_f1("a", "the") == 0.0  # both normalise to nothing
    # repeated tokens count by multiplicity: pred "x x y", gold "x y": 2 shared, p 2/3, r 1
    assert token_f1("x x y", "x y") == pytest.approx(0.8)
    assert token_f1("Broncos", ["Panthers", "Denver Broncos"]) == pytest.approx(2 / 3)


def test_scifact_abstracts_are_printed_arrays_without_commas():
    raw = "['First sentence.'\n 'It\\'s (n = 7).' \"A 'quoted' one.\"]"
    assert parse_sentence_list(raw) == ["First sentence.", "It's (n = 7).", "A 'quoted' one."]


def _question():
    return Question("q1", "who?", ("p1",), (Span("p1", 10, 20),), ("answer",))


def test_judge_contains_needs_the_whole_span_in_a_chunk_of_the_gold_passage():
    pid_of = {"docs/a.txt": "p1", "docs/b.txt": "p2"}
    items = [
        Item("docs/b.txt", 0, 100),  # wrong passage
        Item("docs/a.txt", 15, 40),  # cuts the span
        Item("docs/a.txt", 0, 30),  # holds it
    ]
    rel, n, pids = judge(items, _question(), "contains", pid_of)
    assert rel == (False, False, True) and n == 1 and pids == ("p2", "p1", "p1")
    rel, _, _ = judge(items, _question(), "overlaps", pid_of)
    assert rel == (False, True, True)


def test_judge_by_passage_ranks_distinct_passages():
    q = Question("q1", "claim", ("p1", "p3"))
    pid_of = {"a": "p1", "b": "p2", "c": "p3"}
    items = [Item("b", 0, 1), Item("a", 0, 1), Item("b", 5, 9), Item("a", 3, 4), Item("c", 0, 1)]
    rel, n, pids = judge(items, q, "passage", pid_of)
    assert pids == ("p2", "p1", "p3") and rel == (False, True, True) and n == 2


def test_score_averages_over_answerable_questions():
    ds = Dataset("toy", (Passage("p1", "t", "x" * 30),), (), "contains")
    results = [
        QuestionResult("a", (True,), 1, ("p1",)),
        QuestionResult("b", (False, True), 1, ("p2", "p1")),
        QuestionResult("c", (False,), 0, ("p1",)),  # no gold evidence: not counted
    ]
    s = score(ds, "bm25", results)
    assert s.questions == 2
    assert s.recall[1] == 0.5 and s.recall[5] == 1.0
    assert s.mrr10 == pytest.approx(0.75)
    assert s.ndcg10 == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_sample_keeps_the_needed_passages():
    passages = tuple(Passage(f"p{i}", "t", f"text {i}") for i in range(20))
    questions = tuple(Question(f"q{i}", f"q {i}", (f"p{i}",)) for i in range(20))
    ds = Dataset("toy", passages, questions, "passage")
    small = ds.sample(5, seed=3, max_passages=8)
    assert len(small.questions) == 5 and len(small.passages) == 8
    kept = {p.pid for p in small.passages}
    assert all(q.relevant[0] in kept for q in small.questions)
    assert ds.sample(5, seed=3, max_passages=8) == small  # the seed fixes the draw


def test_cli_rejects_an_unknown_retriever_before_any_work(capsys):
    from qa.eval.cli import main

    assert main(["squad", "--retriever", "dense,nope"]) == 2
    assert "unknown retriever 'nope'" in capsys.readouterr().err
    assert main(["squad", "--limit", "0"]) == 2
