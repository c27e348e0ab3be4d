"""Text and vectors for the benchmarks: real prose to index and real questions to ask.

The text is SQuAD v1.1 dev (read in place from the shared eval data, never copied);
without it, seeded synthetic sentences. Large corpora for the search benchmark are
made by reshuffling the sentences into new documents, so the word statistics (and
so the FTS5 posting lists) grow like a real collection's do.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SENTENCE = re.compile(r"[^.!?]+[.!?]+(?=\s|$)")


@dataclass(frozen=True)
class Corpus:
    origin: str  # "squad" or "synthetic"
    articles: tuple[tuple[str, tuple[str, ...]], ...]  # (title, paragraphs)
    questions: tuple[str, ...]

    @property
    def paragraphs(self) -> list[str]:
        return [p for _, ps in self.articles for p in ps]

    def sentences(self) -> list[str]:
        out: list[str] = []
        for p in self.paragraphs:
            out += [s.strip() for s in SENTENCE.findall(p) if len(s.strip()) > 20]
        return out


def load_corpus(data_dir: str | Path | None = None, seed: int = 0) -> Corpus:
    """SQuAD dev paragraphs and questions if the eval data is there, else synthetic text."""
    from qa.errors import BadInput
    from qa.eval.datasets import default_data_dir, load_squad

    root = Path(data_dir) if data_dir is not None else default_data_dir()
    try:
        squad = load_squad(root)
    except (BadInput, OSError, ValueError, KeyError):
        return synthetic_corpus(seed=seed)
    articles: dict[str, list[str]] = {}
    for p in squad.passages:
        articles.setdefault(p.title, []).append(p.text)
    questions = [q.text for q in squad.questions]
    random.Random(seed).shuffle(questions)
    return Corpus(
        "squad",
        tuple((t, tuple(ps)) for t, ps in articles.items()),
        tuple(questions),
    )


_WORDS = """river city empire music science energy water market court army church
language school island plant animal computer network king queen village engine
theory light planet ocean forest bridge railway harbour garden festival treaty
museum library mountain desert company student teacher doctor painter novel
poem battle election council parliament museum bacteria protein galaxy""".split()
_VERBS = "built found described ruled crossed measured founded studied moved sold".split()


def synthetic_corpus(
    n_articles: int = 48, paragraphs: int = 40, seed: int = 0, n_questions: int = 2000
) -> Corpus:
    """Seeded pseudo-English for when SQuAD is not available."""
    rng = random.Random(seed)

    def sentence() -> str:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 24))]
        words.insert(rng.randint(1, len(words) - 1), rng.choice(_VERBS))
        return " ".join(words).capitalize() + "."

    articles = []
    for a in range(n_articles):
        ps = tuple(
            " ".join(sentence() for _ in range(rng.randint(3, 8))) for _ in range(paragraphs)
        )
        articles.append((f"Article {a}", ps))
    questions = tuple(
        "What " + " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 9))) + "?"
        for _ in range(n_questions)
    )
    return Corpus("synthetic", tuple(articles), questions)


def _safe(title: str) -> str:
    return re.sub(r"[^\w]+", "_", title).strip("_")[:50] or "doc"


def chars_per_chunk(
    texts: Sequence[str], token_spans, chunk_tokens: int, overlap: int, max_tokens: int
) -> float:
    """How many characters of these texts make one chunk, chunked as the index would."""
    chunks = _chunks(texts, token_spans, chunk_tokens, overlap, max_tokens)
    return sum(len(t) for t in texts) / max(1, len(chunks))


def chunk_chars(
    texts: Sequence[str], token_spans, chunk_tokens: int, overlap: int, max_tokens: int
) -> float:
    """The mean length of a chunk's text (longer than `chars_per_chunk`: chunks overlap)."""
    chunks = _chunks(texts, token_spans, chunk_tokens, overlap, max_tokens)
    return sum(len(c.text) for c in chunks) / max(1, len(chunks))


def _chunks(texts, token_spans, chunk_tokens: int, overlap: int, max_tokens: int) -> list:
    from qa.ingest.chunking import chunk_document
    from qa.records import Document

    limit = min(chunk_tokens, max_tokens)
    chunks = []
    for i, text in enumerate(texts):
        chunks += chunk_document(Document(f"s{i}", text), token_spans, limit, overlap)
    return chunks


def article_texts(corpus: Corpus, chars: float, docs: int | None = None) -> list[str]:
    """About `chars` characters of the corpus's articles, cycled if it is too small, as
    document texts (paragraphs separated by blank lines): one per article, or `docs`."""
    picked: list[tuple[int, str]] = []  # (article number, paragraph)
    total = 0
    n = 0
    while total < chars:
        for _title, ps in corpus.articles:
            for p in ps if n < len(corpus.articles) else ps[::-1]:
                picked.append((n, p))
                total += len(p) + 2
                if total >= chars:
                    break
            n += 1
            if total >= chars:
                break
    if docs is None:
        groups: dict[int, list[str]] = {}
        for a, p in picked:
            groups.setdefault(a, []).append(p)
        return ["\n\n".join(ps) + "\n" for ps in groups.values()]
    docs = max(1, min(docs, len(picked)))
    bounds = np.linspace(0, len(picked), docs + 1).astype(int)
    return [
        "\n\n".join(p for _, p in picked[a:b]) + "\n"
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]


def shuffled_texts(
    corpus: Corpus, chars: float, seed: int = 0, paragraphs_per_doc: int = 40
) -> list[str]:
    """About `chars` characters of new documents made of the corpus's sentences drawn at
    random (with replacement), three to seven to a paragraph."""
    rng = random.Random(seed)
    pool = corpus.sentences()
    out: list[str] = []
    total = 0
    while total < chars:
        paras = []
        for _ in range(paragraphs_per_doc):
            para = " ".join(rng.choice(pool) for _ in range(rng.randint(3, 7)))
            paras.append(para)
            total += len(para) + 2
            if total >= chars:
                break
        out.append("\n\n".join(paras) + "\n")
    return out


def sentence_chunks(corpus: Corpus, n: int, chars: float, seed: int = 0):
    """`n` chunk-sized texts (each about `chars` characters) of the corpus's sentences drawn
    at random, with replacement; yielded one at a time (a million of them do not fit well
    in memory as one list)."""
    rng = random.Random(seed)
    pool = corpus.sentences()
    for _ in range(n):
        parts: list[str] = []
        size = 0
        while size < chars:
            s = rng.choice(pool)
            parts.append(s)
            size += len(s) + 1
        yield " ".join(parts)


def write_texts(texts: Sequence[str], folder: Path, prefix: str = "doc") -> list[Path]:
    """Write each text as `<folder>/<prefix>-NNNNNN.txt`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, text in enumerate(texts):
        path = folder / f"{prefix}-{i:06d}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


class SyntheticVectors:
    """An embedder for bulk-loading a benchmark index: the real embedder's name,
    dimension and tokenizer (so chunking and the manifest are the real ones), but
    seeded random unit vectors instead of running the model. An exact (Flat) FAISS
    search costs the same whatever the vectors hold."""

    def __init__(self, base, seed: int = 0) -> None:
        self.base = base
        self.name = base.name
        self.dimension = base.dimension
        self.max_tokens = base.max_tokens
        self._rng = np.random.default_rng(seed)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        v = self._rng.standard_normal((len(texts), self.dimension), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v

    def token_spans(self, texts: Sequence[str]):
        return self.base.token_spans(texts)
