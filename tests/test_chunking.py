"""Chunking: exact offsets, the embedder's token bound, sections, overlap, sentences."""

from __future__ import annotations

import pytest
from fakes import FakeEmbedder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.ingest.chunking import chunk_document, split_sentences
from qa.records import Document, Section

fake = FakeEmbedder()

words = st.sampled_from(
    [
        "Ford",
        "said",
        "the",
        "report",
        "was",
        "false",
        "U.S.",
        "Dr.",
        "e.g.",
        "3.5",
        "naïve",
        "Xiaomi’s",
        "“quoted”",
        "(aside)",
        "x" * 120,
        "end.",
        "Why?",
        "Wow!",
        "…",
        "-",
        "\n",
        "\n\n",
        "  ",
        "\t",
        "草",
        "emoji🙂",
        "a.b.c",
    ]
)
texts = st.lists(words, min_size=0, max_size=300).map(" ".join)


@given(text=texts, max_tokens=st.integers(4, 60), overlap=st.integers(0, 30))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_offsets_round_trip_and_token_bound(text, max_tokens, overlap):
    doc = Document("d.txt", text)
    chunks = chunk_document(doc, fake.token_spans, max_tokens, overlap)
    for i, c in enumerate(chunks):
        assert doc.text[c.start : c.end] == c.text
        assert c.text.strip() == c.text and c.text
        assert len(fake.token_spans([c.text])[0]) <= max_tokens
        assert c.ordinal == i
    # every non-space character of the document is in some chunk
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(ch.isspace() for i, ch in enumerate(text) if i not in covered)


@given(text=texts)
@settings(max_examples=200, deadline=None)
def test_sentences_are_exact_trimmed_and_ordered(text):
    spans = split_sentences(text)
    last = 0
    for a, b in spans:
        assert last <= a < b <= len(text)
        assert text[a:b].strip() == text[a:b]
        last = b
    joined = "".join(text[a:b] for a, b in spans)
    assert "".join(joined.split()) == "".join(text.split())


def test_sentence_splitter_knows_abbreviations_and_quotes():
    text = (
        "Dr. Smith met Mr. Jones in the U.S. on Monday. He said “it was completely false.” "
        "Then he left! Did he? Prices rose 3.5 per cent. e.g. this stays together."
    )
    got = [text[a:b] for a, b in split_sentences(text)]
    assert got == [
        "Dr. Smith met Mr. Jones in the U.S. on Monday.",
        "He said “it was completely false.”",
        "Then he left!",
        "Did he?",
        "Prices rose 3.5 per cent. e.g. this stays together.",
    ]


@pytest.mark.parametrize(
    ("text", "sentences"),
    [  # boundaries the former regex splitter missed (measured on SQuAD dev contexts)
        ("The leaves change color. β-carotene is red.", 2),  # a lower-case Greek letter
        ("Turbines reach 1500 °C. Nonetheless, they run.", 2),  # "C." is not an initial here
        ("It burned as much coal as Newcomen's. Watt improved it.", 2),
        ("The church prohibits it. Rev. Jimmy Creech was defrocked.", 2),
        ('It was "Yeke Mongghul Ulus" (lit. "Great Mongol State") to them.', 1),
        ("He cited Ps. 31:5 in the prayer. It was his last.", 2),
        ("First paragraph without a stop\n\nSecond one\n \n\nThird.", 3),  # blank lines end one
    ],
)
def test_sentence_boundaries(text, sentences):
    spans = split_sentences(text)
    assert len(spans) == sentences, [text[a:b] for a, b in spans]


def test_sentences_of_a_region_stay_inside_it():
    text = "Before. Inside one. Inside two.\n\nAfter."
    start, end = text.index("Inside"), text.index("\n")
    assert [text[a:b] for a, b in split_sentences(text, start, end)] == [
        "Inside one.",
        "Inside two.",
    ]
    assert split_sentences(text, 3, 3) == []


def test_chunks_never_cross_sections_and_carry_page_and_headings():
    text = "Page one talks about cats. Cats purr.\fPage two is about dogs. Dogs bark."
    cut = text.index("\f")
    doc = Document(
        "d.pdf",
        text,
        sections=(Section(0, cut, page=1, headings=("Pets",)), Section(cut + 1, len(text), page=2)),
    )
    chunks = chunk_document(doc, fake.token_spans, max_tokens=100)
    assert [(c.page, c.headings) for c in chunks] == [(1, ("Pets",)), (2, ())]
    assert "cats" in chunks[0].text and "dogs" in chunks[1].text


def test_consecutive_chunks_overlap_by_whole_sentences():
    text = " ".join(f"Sentence number {i} is here." for i in range(30))
    chunks = chunk_document(Document("d.txt", text), fake.token_spans, max_tokens=24, overlap=8)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end, "expected overlap"
        assert text[b.start - 1] == " " or b.start == 0  # starts at a sentence start
    no_overlap = chunk_document(Document("d.txt", text), fake.token_spans, 24, overlap=0)
    assert all(b.start > a.end for a, b in zip(no_overlap, no_overlap[1:], strict=False))


def test_a_very_long_sentence_is_cut_at_word_boundaries():
    text = " ".join(["word"] * 500)
    chunks = chunk_document(Document("d.txt", text), fake.token_spans, max_tokens=50)
    assert len(chunks) == 10
    assert all(c.text.split() == ["word"] * 50 for c in chunks)


@pytest.mark.slow
def test_no_chunk_exceeds_the_real_embedders_limit(real_embedder):
    """all-MiniLM-L6-v2 reads 256 word pieces; longer input would be silently truncated."""
    limit = real_embedder.max_tokens
    assert limit == 254  # 256 minus [CLS] and [SEP]
    nasty = (
        "Pneumonoultramicroscopicsilicovolcanoconiosis " * 40
        + "ßæø" * 300
        + " 1234567890" * 200
        + " no-full-stop-here and it goes on " * 80
        + "草" * 600
        + ". Short one. "
        + "x" * 5000
    )
    doc = Document("d.txt", nasty)
    chunks = chunk_document(doc, real_embedder.token_spans, max_tokens=limit, overlap=32)
    # checked with the model's own tokenizer, loaded afresh (whichever backend embeds)
    from transformers import AutoTokenizer

    from qa import config
    from qa.models.embedder import resolve_model_dir

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir(config.DEFAULT_EMBEDDER))
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        ids = tokenizer(c.text, add_special_tokens=True, verbose=False)["input_ids"]
        assert len(ids) <= 256
