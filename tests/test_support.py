"""Sentence-level support scoring, citation-marker parsing and follow-up rewriting (pure logic)."""

from __future__ import annotations

import pytest
from fakes import FakeEmbedder

from qa.answer.evidence import lexical_precision, negated, support_matrix
from qa.answer.followup import Turn, is_followup, rewrite, topic_phrase
from qa.answer.verify import markers, model_refused, split_claims
from qa.text import stem, terms

FORD = "Did Ford deny the Xiaomi report?"


@pytest.mark.parametrize(
    ("word", "same_as"),
    [("denied", "deny"), ("denies", "deny"), ("reports", "report"), ("Ford's", "ford")],
)
def test_stem(word, same_as):
    assert stem(word) == stem(same_as)


def test_terms_drop_stopwords_and_match_inflections():
    assert terms("Did Ford deny the Xiaomi report?") == [
        stem(w) for w in "ford deny xiaomi report".split()
    ]
    assert set(terms("Ford and Xiaomi both denied the reports")) >= set(terms("Ford deny report"))


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
    [
        "The documents don't say.",
        "The documents don't say how long cats sleep.",
        "The sources do not mention it.",
        "The provided sources don't answer this question.",
        "The context does not specify the price.",
        "There is no information about the price in the sources.",
        "The price is not mentioned in the documents [1].",
        "I cannot determine this from the passages.",
        "Answer: the text does not say.",
        "I don't know.",
        "The documents don't say. Ford denied it [1].",
    ],
)
def test_model_refusals_are_recognised(text):
    assert model_refused(text)


@pytest.mark.parametrize(
    "text",
    [
        "Ford called the report completely false [1].",
        # an answer that states what a document does not say is still an answer
        "The price was not specified in the contract [1].",
        "No information was released about the joint venture [1].",
        "Ford said it did not know about the plan [1].",
        "The location was not mentioned by Ford [1].",
        "Xiaomi cannot answer the claims until June [2].",
        # a caveat after the answer leaves the answer standing
        "Ford denied the report [1]. The sources do not say why.",
    ],
)
def test_an_answer_is_not_a_refusal(text):
    assert not model_refused(text)


# --- follow-ups -------------------------------------------------------------------------------


def test_topic_phrase_is_the_last_noun_phrase():
    assert topic_phrase(FORD) == "the Xiaomi report"
    assert topic_phrase("Who founded Tesla?") == "Tesla"


TARIFF = "What tariff do Chinese-made EVs face in the US?"
# Questions with a subject of their own (a name, or a content word with a verb) and nothing
# pointing back: they must be searched as they are, whatever was asked before.
STANDALONE = [
    "Who is Ford?",
    "What is Xiaomi?",
    "What is photosynthesis?",
    "who is ford?",
    "Who is the CEO of Apple?",
    "When will Trump visit China?",
    "Who founded Tesla?",
    TARIFF,
    FORD,
    "Where is Mount Etna?",
    "How many countries does the Danube flow through?",
    "Is BYD building a factory in Mexico?",
    "Which company makes the SU7?",
    "Why do cats purr?",
    "What happened in 2024?",
]
# Questions that lean on the previous turn: a leading "and" / "what about", a pronoun, a
# closing "that", or no subject of their own.
FOLLOWUPS = [
    "What about Xiaomi?",
    "How about Tesla?",
    "And Xiaomi?",
    "And did they deny it?",
    "And did Xiaomi deny it too?",
    "Did they say why?",
    "When was that?",
    "Who said that?",
    "Which year was that?",
    "Why?",
    "Why not?",
    "What year?",
    "Is it true?",
    "What did he say?",
    "Where is it?",
    "So when?",
]


@pytest.mark.parametrize(
    ("question", "followup"),
    [(q, False) for q in STANDALONE] + [(q, True) for q in FOLLOWUPS],
)
def test_is_followup(question, followup):
    assert is_followup(question) is followup


@pytest.mark.parametrize("question", STANDALONE)
@pytest.mark.parametrize("previous", [FORD, TARIFF])
def test_a_standalone_question_is_searched_as_it_is(question, previous):
    # "Who is Ford?" after the tariff question was searched as "Who is Ford (tariff ...)?"
    assert rewrite(question, [Turn(previous)]) == question


@pytest.mark.parametrize("question", FOLLOWUPS)
def test_a_follow_up_is_completed_from_the_previous_question(question):
    query = rewrite(question, [Turn(FORD)])
    assert query != question
    assert set(terms("Xiaomi report")) <= set(terms(query)), query


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What about C:\\data?", "Did C:\\data deny the Xiaomi report?"),
        ("What about \\1?", "Did \\1 deny the Xiaomi report?"),
        ("What about \\g<0>?", "Did \\g<0> deny the Xiaomi report?"),
        ("What about $5 (or [more])?", "Did $5 (or [more]) deny the Xiaomi report?"),
    ],
)
def test_what_about_keeps_regex_characters_literally(question, expected):
    # the user's text was used as a re.sub template: "C:\\data" raised re.error (bad escape \\d)
    assert rewrite(question, [("Did Ford deny the Xiaomi report?", "Yes")]) == expected


@pytest.mark.parametrize("text", ["C:\\data", "\\1", "\\g<0>", "$1", "(a[b", "^.*$"])
def test_regex_characters_in_the_history_are_literal(text):
    # the previous question's subject and topic are inserted into the follow-up too
    previous = f"Did Ford {text} deny the {text} report?"
    query = rewrite("Did they say why it happened?", [Turn(previous)])
    assert query.startswith("Did Ford say why"), query
    query = rewrite(f"And what did {text} mean?", [Turn(FORD)])
    assert text in query, query


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
