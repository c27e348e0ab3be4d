"""Sentence-level support scoring, citation-marker parsing and follow-up rewriting (pure logic)."""

from __future__ import annotations

import pytest
from fakes import FakeEmbedder

from qa.answer.followup import Turn, is_followup, rewrite, topic_phrase
from qa.answer.evidence import lexical_precision, negated, stem, support_matrix, terms
from qa.answer.verify import markers, model_refused, split_claims

FORD = "Did Ford deny the Xiaomi report?"


@pytest.mark.parametrize(
    ("word", "expected"),
    [("denied", "deny"), ("denies", "deny"), ("reports", "report"), ("Ford's", "ford")],
)
def test_stem(word, expected):
    assert stem(word) == expected


def test_terms_drop_stopwords_and_match_inflections():
    assert terms("Did Ford deny the Xiaomi report?") == ["ford", "deny", "xiaomi", "report"]
    assert set(terms("Ford and Xiaomi both denied the reports")) >= {"ford", "deny", "report"}


def test_lexical_precision_penalises_invented_names_and_numbers():
    evidence = "It is understood President Trump is due to visit China in April."
    q = "When will Trump visit China?"
    assert lexical_precision("Trump will visit China in April.", evidence, q) == 1.0
    invented = lexical_precision("Trump will visit China in April 2024.", evidence, q)
    assert invented < 0.5
    assert lexical_precision("The CEO of Ford is Elon Musk.", evidence, "Who is Ford's CEO?") < 0.3


def test_negation_mismatch_lowers_support():
    emb = FakeEmbedder()
    evidence = ["Ford and Xiaomi both denied the report."]
    yes, no = support_matrix(
        ["Ford denied the report.", "Ford did not deny the report."], evidence, emb, FORD
    )[:, 0]
    assert negated("Ford did not deny it") and not negated("Ford denied it")
    assert yes > 0.5 > no


def test_markers_skip_quotes_and_code():
    text = 'Cats sleep [1] and "purr [2]" with `a[3]` and “x [4]” [5, 6].'
    assert [m.numbers for m in markers(text)] == [(1,), (5, 6)]


def test_split_claims_moves_markers_before_the_full_stop_and_drops_repeats():
    claims = split_claims("Answer: Ford denied it. [1] Ford denied it. Xiaomi did too [2].")
    assert claims == ["Ford denied it [1].", "Xiaomi did too [2]."]


@pytest.mark.parametrize(
    "text",
    ["The documents don't say.", "The sources do not mention it.", "I don't know."],
)
def test_model_refusals_are_recognised(text):
    assert model_refused(text)


def test_an_answer_is_not_a_refusal():
    assert not model_refused("Ford called the report completely false [1].")


# --- follow-ups -------------------------------------------------------------------------------


def test_topic_phrase_is_the_last_noun_phrase():
    assert topic_phrase(FORD) == "the Xiaomi report"
    assert topic_phrase("Who founded Tesla?") == "Tesla"


@pytest.mark.parametrize(
    ("question", "followup"),
    [
        ("And did Xiaomi deny it too?", True),
        ("What about Xiaomi?", True),
        ("Did they say why?", True),
        ("Who is the CEO of Apple?", False),
        ("When will Trump visit China?", False),
    ],
)
def test_is_followup(question, followup):
    assert is_followup(question) is followup


def test_follow_up_pronoun_is_replaced_by_the_previous_topic():
    query = rewrite("And did Xiaomi deny it too?", [Turn(FORD)])
    assert query.startswith("Did Xiaomi deny the Xiaomi report too")
    assert "Ford" in query  # missing key terms of the previous question are added


def test_what_about_replaces_the_subject_of_the_previous_question():
    assert rewrite("What about Xiaomi?", [Turn(FORD)]) == "Did Xiaomi deny the Xiaomi report?"


def test_person_pronoun_is_replaced_by_the_previous_subject():
    assert rewrite("Did they say why?", [Turn(FORD)]).startswith("Did Ford say why")


def test_standalone_questions_and_empty_history_are_unchanged():
    assert rewrite("Who is the CEO of Apple?", [Turn(FORD)]) == "Who is the CEO of Apple?"
    assert rewrite("And did Xiaomi deny it too?", None) == "And did Xiaomi deny it too?"


def test_the_previous_standalone_query_is_used_for_chains():
    turns = [
        Turn("Who founded Tesla?"),
        Turn("When was it founded?", query="When was Tesla founded?"),
    ]
    assert "Tesla" in rewrite("Where was it?", turns)
