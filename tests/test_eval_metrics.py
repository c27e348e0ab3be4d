"""Metric functions on hand-made cases with known values, and the data set loaders."""

import math

import pytest

from qa.eval.answers import AnswerResult, CitationJudgement, judge_answer, latency, score_answers
from qa.eval.datasets import Dataset, Passage, Question, Span, parse_sentence_list
from qa.eval.metrics import (
    citation_precision,
    citation_recall,
    contains_answer,
    exact_match,
    ndcg_at_k,
    normalize_answer,
    percentile,
    recall_at_k,
    reciprocal_rank,
    refusal_rates,
    strip_markers,
    token_f1,
)
from qa.eval.refusal import choose_threshold, refusal_scores
from qa.eval.retrieval import Item, QuestionResult, judge, score
from qa.records import Answer, Citation

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
    assert "unknown retriever nope" in capsys.readouterr().err
    assert main(["squad", "--limit", "0"]) == 2
    assert main(["squad", "--mode", "fancy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "--limit must be at least 1" in err and "invalid choice" in err


# ----------------------------------------------------------------- answers and citations


def test_contains_answer_matches_whole_normalised_tokens():
    assert contains_answer("It was founded in 1990 by Smith.", "1990")
    assert contains_answer("The Denver Broncos won.", ["Carolina", "denver broncos"])
    assert not contains_answer("It was founded in 1990.", "199")  # not part of a token
    assert not contains_answer("It was founded in 1990.", "in the 1990s")
    assert not contains_answer("anything", ["", "the"])  # empty after normalisation


def test_strip_markers_removes_citation_markers_only():
    assert strip_markers("Ford denied it [1]. Xiaomi too [2][3].") == "Ford denied it. Xiaomi too."
    assert strip_markers("In [1, 3] cases [4].") == "In cases."
    assert strip_markers("The list [a] stays.") == "The list [a] stays."


def test_citation_precision_is_the_share_of_all_citations():
    # 3 questions: 2 of 2 right, 0 of 1, 1 of 3 -> 3 of 6
    judged = [[True, True], [False], [True, False, False]]
    assert citation_precision(judged) == 0.5
    assert citation_recall(judged) == pytest.approx(2 / 3)  # 2 questions with a right one
    assert citation_recall([[], [True]]) == 0.5  # no citation: a miss
    assert citation_precision([[], []]) is None and citation_recall([]) is None


def test_refusal_rates():
    # answerables: 1 of 4 refused -> 0.75 answered; unanswerables: 2 of 5 refused -> 0.4 declined
    assert refusal_rates([F, T, F, F], [T, F, T, F, F]) == (0.75, 0.4)
    assert refusal_rates([], [T]) == (None, 1.0)


def test_percentile_interpolates_linearly():
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 95) == pytest.approx(3.85)  # 3 + 0.85 * (4 - 3)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_choose_threshold_answers_the_target_share():
    pos = [0.1 * i for i in range(1, 11)]  # 0.1 .. 1.0
    neg = [0.05, 0.15, 0.25, 0.5]
    t, answered, declined = choose_threshold(pos, neg, target=0.9)
    assert t == pytest.approx(0.2) and answered == 0.9 and declined == 0.5  # 0.05, 0.15


SQUAD_Q = Question(
    "q",
    "When?",
    ("p1",),
    (Span("p1", 40, 44),),  # "1990" in the passage text below
    ("1990", "in 1990"),
)


def _cite(n, source, start, end, quote):
    return Citation(n, source, start, end, quote)


def test_squad_citation_must_be_in_the_gold_paragraph_and_hold_the_answer():
    pid_of = {"a.txt": "p1", "b.txt": "p2"}
    answer = Answer(
        "When?",
        "It opened in 1990 [1]. It grew [2]. Also 1990 [3]. And [4].",
        citations=(
            _cite(1, "a.txt", 30, 50, "it opened in 1990."),  # holds the gold span
            _cite(2, "a.txt", 0, 20, "It grew."),  # gold paragraph, no answer
            _cite(3, "b.txt", 0, 30, "Also in 1990 elsewhere."),  # answer text, wrong paragraph
            _cite(4, "a.txt", 100, 130, "Opened in 1990, it says."),  # other occurrence: text
        ),
        timings={"retrieve": 0.5, "total": 0.6},
    )
    r = judge_answer(answer, SQUAD_Q, "contains", pid_of)
    assert [c.correct for c in r.citations] == [True, False, False, True]
    assert [c.in_passage for c in r.citations] == [True, True, False, True]
    assert r.text == answer.text and r.em == 0.0 and r.contains is True
    # markers are stripped before scoring: "It opened in 1990 It grew ..." vs "1990"
    assert 0 < r.f1 < 1


def test_clapnq_citation_must_overlap_a_gold_sentence():
    q = Question("q", "Why?", ("c1",), (Span("c1", 100, 200),), ("Because of rain.",))
    pid_of = {"c.txt": "c1"}
    answer = Answer(
        "Why?",
        "Because of rain [1][2].",
        citations=(_cite(1, "c.txt", 150, 250, "x"), _cite(2, "c.txt", 0, 100, "y")),
    )
    r = judge_answer(answer, q, "overlaps", pid_of)
    assert [c.correct for c in r.citations] == [True, False]  # [0, 100) ends where gold starts
    assert r.f1 == 1.0 and r.em is None and r.contains is None  # EM is SQuAD's only


def test_refusal_and_unanswerable_are_scored_apart():
    refused = Answer("When?", "The documents don't say.", refused=True)
    r = judge_answer(refused, SQUAD_Q, "contains", {})
    assert (r.em, r.f1, r.contains, r.citations) == (0.0, 0.0, False, ())
    unanswerable = Question("u", "Who?", (), context=("c9",))
    r = judge_answer(
        Answer("Who?", "Bob [1].", citations=(_cite(1, "z", 0, 3, "Bob"),)),
        unanswerable,
        "overlaps",
        {"z": "c9"},
    )
    assert r.f1 is None and not r.answerable and r.citations[0].correct is False


def _result(qid, answerable, refused, f1, cites, timings):
    judged = tuple(
        CitationJudgement(i + 1, "p", ok or loose, ok) for i, (ok, loose) in enumerate(cites)
    )
    return AnswerResult(qid, qid, answerable, refused, "", None, f1, None, judged, timings)


def test_score_answers_on_hand_made_results():
    ds = Dataset("clapnq", (), (), "overlaps")
    results = [
        _result(
            "a", True, False, 0.5, [(True, True), (False, True)], {"retrieve": 0.1, "generate": 1.0}
        ),
        _result("b", True, False, 0.3, [(False, False)], {"retrieve": 0.3, "generate": 3.0}),
        _result("c", True, True, 0.0, [], {"retrieve": 0.2, "generate": 0.0}),
        _result("d", False, True, None, [], {"retrieve": 0.4}),
        _result("e", False, False, None, [(False, False)], {"retrieve": 0.5, "generate": 2.0}),
    ]
    s = score_answers(ds, "llm", results, model="m.gguf")
    assert s.questions == 3 and s.answered == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(0.8 / 3) and s.f1_answered == pytest.approx(0.4)
    assert s.em is None and s.contains is None
    c = s.citations  # answered answerables a and b: 1 right of 3, 2 in the gold passage
    assert (c.questions, c.citations) == (2, 3)
    assert c.precision == pytest.approx(1 / 3) and c.precision_passage == pytest.approx(2 / 3)
    assert c.recall == 0.5
    assert s.refusal.to_dict() == {
        "answerable": 3,
        "answered": 0.6667,
        "unanswerable": 2,
        "declined": 0.5,
    }
    stages = {x.stage: x for x in s.latency}
    assert stages["retrieve"].n == 5 and stages["retrieve"].p50 == pytest.approx(0.3)
    assert stages["generate"].n == 3 and stages["generate"].p50 == 2.0  # only where it ran
    assert "prompt" not in stages
    assert refusal_scores(results) == s.refusal
    assert latency(results, ("generate",))[0].p95 == pytest.approx(2.9)


def test_sample_draws_both_kinds_in_proportion():
    passages = tuple(Passage(f"p{i}", "t", "x") for i in range(10))
    yes = tuple(Question(f"a{i}", "q", (f"p{i}",)) for i in range(6))
    no = tuple(Question(f"u{i}", "q", (), context=(f"p{i + 6}",)) for i in range(4))
    ds = Dataset("toy", passages, yes + no, "overlaps")
    s = ds.sample(5, seed=1, max_passages=5)
    assert sum(q.answerable for q in s.questions) == 3  # 6/10 of 5
    kept = {p.pid for p in s.passages}
    assert all(set(q.relevant + q.context) <= kept for q in s.questions)  # own passages kept
    assert [q.qid for q in s.questions] == sorted(
        (q.qid for q in s.questions), key=[x.qid for x in ds.questions].index
    )
