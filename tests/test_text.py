"""qa.text: one stopword list and the Porter stemmer, shared by BM25 queries, evidence scoring,
citation checks and follow-up rewriting."""

from __future__ import annotations

import sqlite3

import pytest

from qa import text

WORDS = "denied denies deny reports report production produce running generalization ponies"


def fts5_porter_terms(words: list[str]) -> list[str]:
    """What SQLite's FTS5 `porter` tokenizer (the BM25 index's) stores for each word."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter unicode61')")
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        out = []
        for w in words:
            db.execute("DELETE FROM t")
            db.execute("INSERT INTO t(x) VALUES (?)", (w,))
            out.append(db.execute("SELECT term FROM v").fetchone()[0])
        return out
    finally:
        db.close()


def test_stems_are_the_ones_the_bm25_index_stores():
    words = WORDS.split()
    assert [text.stem(w) for w in words] == fts5_porter_terms(words)


@pytest.mark.parametrize(
    ("a", "b"),
    [("denied", "deny"), ("denies", "deny"), ("reports", "report"), ("Ford's", "ford")],
)
def test_inflections_share_a_stem(a, b):
    assert text.stem(a) == text.stem(b)


def test_the_stopword_list_is_snowballs_plus_question_words():
    assert len(text.SNOWBALL_ENGLISH) == 174
    assert text.STOPWORDS == text.SNOWBALL_ENGLISH | text.QUESTION_WORDS
    assert {"the", "did", "don't", "name", "called"} <= text.STOPWORDS
    assert not {"ford", "report", "price", "year"} & text.STOPWORDS


def test_one_word_list_everywhere():
    from qa.answer import evidence, followup, verify
    from qa.index import store

    for module in (evidence, followup, verify, store):
        assert module.STOPWORDS is text.STOPWORDS, module.__name__
    assert evidence.terms is text.terms and evidence.stem is text.stem


def test_words_and_terms():
    assert text.words("Ford’s CEO didn't deny it, 2024_x!") == [
        "Ford’s",
        "CEO",
        "didn't",
        "deny",
        "it",
        "2024",
        "x",
    ]
    assert text.terms("Did Ford deny the Xiaomi report in 2024?") == [
        "ford",
        "deni",
        "xiaomi",
        "report",
        "2024",
    ]
