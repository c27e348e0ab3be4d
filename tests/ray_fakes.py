"""Fakes for the Ray tests that run inside Ray workers (pickled by value, so the workers need
not import the tests): failure injection for one file, and an embedder that counts."""

from __future__ import annotations

import os
from dataclasses import dataclass

from fakes import FakeEmbedder

from qa.ingest.parallel import Job, Loaded, read_and_load


@dataclass(frozen=True)
class DieOn:
    """A loader that kills its worker process (as the OOM killer or a segfault would) when
    it reaches a file whose name ends with `suffix`; every other file loads as usual."""

    suffix: str

    def __call__(self, job: Job) -> Loaded:
        if job.source.endswith(self.suffix):
            os._exit(1)
        return read_and_load(job)


class DyingEmbedder(FakeEmbedder):
    """A fake embedder whose actor process dies when asked to embed a text containing `word`."""

    def __init__(self, word: str = "explode") -> None:
        super().__init__()
        self.word = word

    def embed(self, texts):
        if any(self.word in t for t in texts):
            os._exit(1)
        return super().embed(texts)


@dataclass(frozen=True)
class MakeDying:
    """A picklable factory of `DyingEmbedder`s (a new one in every actor)."""

    word: str = "explode"

    def __call__(self) -> DyingEmbedder:
        return DyingEmbedder(self.word)


class CountingEmbedder(FakeEmbedder):
    """A fake embedder that appends the number of texts of every `embed` call to the file
    `log`, one line each (the actors run in other processes)."""

    def __init__(self, log: str) -> None:
        super().__init__()
        self.log = log

    def embed(self, texts):
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(f"{len(texts)}\n")
        return super().embed(texts)


@dataclass(frozen=True)
class Counting:
    """A picklable factory of `CountingEmbedder`s writing to `log`."""

    log: str

    def __call__(self) -> CountingEmbedder:
        return CountingEmbedder(self.log)

    def embedded(self) -> int:
        """Texts embedded so far, by every actor."""
        try:
            with open(self.log, encoding="utf-8") as f:
                return sum(int(line) for line in f if line.strip())
        except FileNotFoundError:
            return 0
