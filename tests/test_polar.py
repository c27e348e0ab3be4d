"""The reader's synthetic yes/no questions (qa.train.polar)."""

from __future__ import annotations

import random

import pytest

from qa.train.polar import negated, polar_question, swapped


@pytest.mark.parametrize(
    ("sentence", "question"),
    [
        ("Ford denied the report.", "Did Ford deny the report?"),
        ("Paris is the capital of France.", "Is Paris the capital of France?"),
        ("In 1905, Tesla was born in Smiljan.", "Was Tesla born in Smiljan in 1905?"),
        (
            "The city has a population of 4 million.",
            "Does the city have a population of 4 million?",
        ),
        ("The team had won the cup.", "Had the team won the cup?"),
        # "interactions" is a plural, not a verb: "are" is fronted
        ("Only four main interactions are known.", "Are only four main interactions known?"),
        ("Xiaomi sells phones and cars.", "Does Xiaomi sell phones and cars?"),
        (
            "The newly formed committee decided to meet.",
            "Did the newly formed committee decide to meet?",
        ),
    ],
)
def test_a_sentence_becomes_the_yes_no_question_it_answers(sentence, question):
    assert polar_question(sentence) == question


@pytest.mark.parametrize(
    "sentence",
    [
        "If Ford denied the report, talks went on.",  # a condition states no fact
        "“It was completely false,” he said.",  # a quote
        "Hello.",
    ],
)
def test_sentences_without_a_main_verb_to_front_give_none(sentence):
    assert polar_question(sentence) is None


SUBORDINATE = (
    "While Ford and Xiaomi both denied the report – with the Blue Oval brand going as far to "
    "say it was “completely false” – a new revelation has surfaced, claiming Ford has been "
    "pursuing a joint venture."
)


def test_a_subordinate_clause_that_states_a_fact_is_asked_about_too():
    assert polar_question(SUBORDINATE) == "Did Ford and Xiaomi both deny the report?"
    # the main clause after the aside, where the answer is there
    assert polar_question(SUBORDINATE, "a new revelation") == (
        "Has a new revelation surfaced, claiming Ford has been pursuing a joint venture?"
    )
    assert polar_question("Although it rained, the match was played.", "the match") == (
        "Was the match played?"
    )
    assert negated(SUBORDINATE).startswith("While Ford and Xiaomi both did not deny the report –")
    assert negated(SUBORDINATE).endswith("pursuing a joint venture.")


def test_the_no_question_swaps_the_answer_for_one_of_the_same_shape():
    q = "Was Tesla born in Smiljan in 1905?"
    rng = random.Random(0)
    assert swapped(q, "1905", ["Belgrade", "1856"], rng) == "Was Tesla born in Smiljan in 1856?"
    assert swapped(q, "Smiljan", ["1856", "Gospić"], rng) == "Was Tesla born in Gospić in 1905?"
    assert swapped(q, "Vienna", ["Gospić"], rng) is None  # the answer is not in the question
    assert swapped(q, "1905", ["Gospić"], rng) is None  # nothing of the same shape


@pytest.mark.parametrize(
    ("sentence", "opposite"),
    [
        ("Ford denied the report.", "Ford did not deny the report."),
        ("In 1905, Tesla was born in Smiljan.", "In 1905, Tesla was not born in Smiljan."),
        (
            "The city has a population of 4 million.",
            "The city does not have a population of 4 million.",
        ),
        ("Xiaomi sells phones.", "Xiaomi does not sell phones."),
        ("He did not go home.", None),  # negated already
    ],
)
def test_a_sentence_is_negated_for_the_no_answers(sentence, opposite):
    assert negated(sentence) == opposite


def test_the_other_clause_is_negated_for_yes_answers_with_a_negation_elsewhere():
    sentence = "Although it rained, the match was played."
    assert polar_question(sentence, "the match") == "Was the match played?"
    assert (
        negated(sentence, "the match", clause=1)
        == "Although it did not rain, the match was played."
    )
    assert negated("Ford denied the report.", clause=1) is None  # one clause only
