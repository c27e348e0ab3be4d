"""Answers on the sample corpus with the shipped reader and its evidence scorer (real models):
the default (the scorer chooses, it and the similarity heuristics may each decline: see
qa.answer.pipeline.Options) and the scorer alone (`refusal="scorer"`). The direct answer
leads, the right sentence is quoted with exact offsets, and questions the article does not
answer are declined."""

from __future__ import annotations

import re

import pytest

from qa import Engine
from qa.answer import combine
from qa.answer.pipeline import Options
from qa.models.reader import default_reader_path

pytestmark = pytest.mark.slow

needs_scorer = pytest.mark.skipif(
    not (default_reader_path() / combine.FILE_NAME).is_file(),
    reason="models/reader/combiner.json is missing (it is committed: check the checkout)",
)


@pytest.fixture(scope="module")
def engine(corpus_index):
    e = Engine(index=corpus_index, settings=corpus_index.settings.with_(threads=1))
    assert combine.for_reader(e.reader()) is not None  # the learned scorer is what answers
    return e


LEARNED = Options(evidence="learned", refusal="scorer")  # the scorer alone
DEFAULT = Options()


def exact(engine, answer):
    for c in answer.citations:
        assert engine.index.document_text(c.source)[c.start : c.end] == c.quote
    if answer.short is not None:
        text = engine.index.document_text(answer.short.source)
        assert text[answer.short.start : answer.short.end] == answer.short.text


@needs_scorer
def test_the_canonical_question_is_answered_citing_completely_false(engine):
    answer = engine.ask("Did Ford deny the Xiaomi report?", mode="extractive", options=LEARNED)
    assert not answer.refused, answer.text
    # The yes/no head speaks only above the confidence calibrated on the held-out slice
    # (combiner.json "yes_no"); today it never reaches 90% accuracy there, so the answer
    # is the quote without a "Yes" (README "Measured"). It must never say "No".
    assert not re.match(r"\s*no\b", answer.text, re.IGNORECASE), answer.text
    if answer.short is not None and answer.short.kind in ("yes", "no"):
        assert answer.short.kind == "yes"
    assert "completely false" in answer.citations[0].quote
    exact(engine, answer)


# Reader run 6 (2026-12-03) with its scorer answers these two at answerability 0.132 and
# 0.124 against its calibrated threshold 0.111 ("Ford", "Jim Farley"): a known failure of
# the learned evidence (not the default, README "Measured"). strict: a reader that declines
# them again makes these tests pass, and the marks must then go.
KNOWN_WRONG = pytest.mark.xfail(
    strict=True, reason="reader run 6's scorer answers it just above its threshold"
)


@needs_scorer
@pytest.mark.parametrize(
    "question",
    [
        pytest.param("Who founded Xiaomi?", marks=KNOWN_WRONG),
        pytest.param("Who is the CEO of Apple?", marks=KNOWN_WRONG),
        "What is the boiling point of water?",
        "What is the capital of France?",
    ],
)
def test_questions_the_article_does_not_answer_are_declined_by_the_scorer(engine, question):
    answer = engine.ask(question, mode="extractive", options=LEARNED)
    assert answer.refused, answer.text
    assert answer.citations == () and answer.short is None


# Both gates (the default): the heuristics decline "Who is the CEO of Apple?" (no passage
# names Apple), which the scorer alone answers; both still let "Who founded Xiaomi?" through
# (scorer 0.132 against 0.095, similarity 0.62 against 0.49): "Ford".
BOTH_WRONG = pytest.mark.xfail(strict=True, reason="both gates pass it: the reader reads 'Ford'")


@needs_scorer
@pytest.mark.parametrize(
    "question",
    [
        pytest.param("Who founded Xiaomi?", marks=BOTH_WRONG),
        "Who is the CEO of Apple?",
        "What is the boiling point of water?",
        "What is the capital of France?",
        "How many Xiaomi cars has Ford sold?",
    ],
)
def test_by_default_questions_the_article_does_not_answer_are_declined(engine, question):
    answer = engine.ask(question, mode="extractive")
    assert answer.refused, answer.text
    assert answer.citations == () and answer.short is None


@needs_scorer
def test_by_default_the_scorer_finds_the_newspaper(engine):
    """The similarity heuristics quoted the "both denied the report" sentence for this."""
    answer = engine.ask("Which newspaper reported the joint venture?", mode="extractive")
    assert not answer.refused and answer.short is not None, answer.text
    assert "Financial Times" in answer.short.text
    assert "Financial Times" in answer.citations[0].quote
    exact(engine, answer)


@needs_scorer
def test_a_factoid_question_leads_with_a_short_span(engine):
    answer = engine.ask("What is the name of Ford's CEO?", mode="extractive", options=LEARNED)
    assert not answer.refused and answer.short is not None, answer.text
    assert answer.short.kind == "span" and "Farley" in answer.short.text
    assert len(answer.short.text) < 40
    assert re.match(r"(Jim )?Farley\b", answer.text)
    exact(engine, answer)


@needs_scorer
def test_model_mode_gets_the_learned_evidence_and_keeps_refusing(engine):
    answer = engine.ask("Did Ford deny the Xiaomi report?", mode="llm", options=LEARNED)
    assert not answer.refused
    assert any("completely false" in c.quote for c in answer.citations)
    exact(engine, answer)
    assert engine.ask("What is the boiling point of water?", mode="llm", options=LEARNED).refused
