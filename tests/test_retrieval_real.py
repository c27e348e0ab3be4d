"""Retrieval with the real default embedder on the sample corpus."""

from __future__ import annotations

import pytest
from conftest import FORD_QUESTION

pytestmark = pytest.mark.slow


def test_ford_question_finds_the_completely_false_passage_first(corpus_index):
    hits = corpus_index.search(FORD_QUESTION, k=5)
    assert "completely false" in hits[0].text
    assert hits[0].source.endswith("ford-xiaomi-joint-venture.txt")
    text = corpus_index.document_text(hits[0].source)
    assert text[hits[0].start : hits[0].end] == hits[0].text
    assert set(hits[0].retrievers) == {"dense", "bm25"}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("mode", ["dense", "bm25"])
def test_each_retriever_alone_also_ranks_it_first(corpus_index, mode):
    hits = corpus_index.search(FORD_QUESTION, k=3, mode=mode)
    assert "completely false" in hits[0].text
    assert hits[0].retrievers == (mode,)


def test_real_embedder_vectors(real_embedder):
    import numpy as np

    vecs = real_embedder.embed(["Ford denied the report.", "Ford called it false."])
    assert vecs.shape == (2, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert float(vecs[0] @ vecs[1]) > 0.5
