"""Fakes for unit tests of logic: fast, deterministic, no model files."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence

import numpy as np

TOKEN = re.compile(r"\w+|[^\w\s]")


class FakeEmbedder:
    """Bag-of-words hashing vectors; tokens are words and punctuation marks."""

    def __init__(
        self, name: str = "fake-hash", dimension: int = 64, max_tokens: int = 64, delay: float = 0.0
    ) -> None:
        self.name = name
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.delay = delay
        self.calls: list[int] = []

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [[m.span() for m in TOKEN.finditer(t)] for t in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        if self.delay:
            time.sleep(self.delay * len(texts))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[i, h % self.dimension] += 1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else 1.0 / np.sqrt(self.dimension)
        return out
