"""What a question's answer must contain (qa.answer.expect), and its use on the sample
corpus with the real models: "how many" is declined over evidence with no quantity."""

from __future__ import annotations

import pytest

from qa.answer.expect import can_answer, has_quantity, wants_quantity
from qa.answer.pipeline import Options


def test_how_many_wants_a_quantity():
    assert wants_quantity("How many Xiaomi cars has Ford sold?")
    assert wants_quantity("And how many did it sell?")
    assert not wants_quantity("How did Ford respond?") and not wants_quantity("Who founded it?")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("A 100 per cent tariff applies.", True),
        ("Twice the figure for the average profession.", True),
        ("Several hundred cars were built.", True),
        ("Ford assists with producing cars in the US.", False),
        ("Someone said it was completely false.", False),  # "one" inside a word is not one
    ],
)
def test_a_quantity_is_a_digit_or_a_number_word(text, found):
    assert has_quantity(text) is found


def test_other_questions_are_not_constrained():
    assert can_answer("Who is Ford's CEO?", "Jim Farley runs Ford.")
    assert not can_answer("How many cars has Ford sold?", "Ford builds cars in the US.")


@pytest.mark.slow
@pytest.mark.parametrize("evidence", ["heuristic", "learned"])
def test_how_many_is_declined_without_a_quantity_and_answered_with_one(corpus_index, evidence):
    from qa import Engine

    engine = Engine(index=corpus_index, settings=corpus_index.settings.with_(threads=1))
    options = Options(evidence=evidence)
    sold = engine.ask("How many Xiaomi cars has Ford sold?", mode="extractive", options=options)
    assert sold.refused and sold.citations == (), sold.text
    tariff = engine.ask(
        "How many per cent is the US tariff on Chinese-made EVs?",
        mode="extractive",
        options=options,
    )
    assert not tariff.refused, tariff.text
    assert "100 per cent" in tariff.citations[0].quote
