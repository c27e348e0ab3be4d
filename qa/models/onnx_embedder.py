"""The `onnx` embedder backend: the exported model (`qa.models.onnx_export`) run by ONNX
Runtime, tokenized by the `tokenizers` library, pooled and normalized in numpy.

It imports neither torch nor transformers nor sentence-transformers (unless the model has
to be exported first), so a process that only searches starts fast. It reads the same
`tokenizer.json` as the torch backend, so chunk boundaries are the same with either.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa import config
from qa.errors import ModelNotFound
from qa.models.embedder import CachedEmbedding, Spans, display_name, resolve_model_dir

BACKENDS = {"onnx": "int8", "onnx-fp32": "fp32"}
# Texts per ONNX Runtime run. The int8 model quantizes its activations with one scale per
# run (ONNX Runtime's DynamicQuantizeLinear is per tensor), so in a batch a text's vector
# depended on its batch mates: cosine 0.989 to the same text embedded alone (SQuAD
# paragraphs; 32 against 16 mates: 0.991). One text per run makes every vector that of the
# text alone, the same in any folder, batch or order, and at the same speed here (256 SQuAD
# paragraphs: 10.9 texts/s both ways, 2 cores). The fp32 export has no such scale: batched.
BATCH_SIZE = {"onnx": 1, "onnx-fp32": 32}


class OnnxEmbedder(CachedEmbedding):
    """A sentence-transformers model through ONNX Runtime; loaded on first use, thread-safe."""

    def __init__(
        self,
        model: str = config.DEFAULT_EMBEDDER,
        backend: str = "onnx",
        batch_size: int | None = None,
        threads: int | None = None,
    ) -> None:
        from qa.models.onnx_export import model_config

        if backend not in BACKENDS:
            raise ValueError(f"not an onnx backend: {backend!r}")
        self.model_dir = resolve_model_dir(model)
        self.name = display_name(model, self.model_dir)
        self.backend = backend
        self.batch_size = batch_size or BATCH_SIZE[backend]
        self.threads = threads
        self._config = model_config(self.model_dir)  # fails fast for unsupported models
        self._session = None
        self._folder: Path | None = None
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._spans_lock = threading.Lock()
        self._tokenizer = None
        self._span_tokenizer = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    # --- loading -------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        """The export folder (exported now if it is not there yet)."""
        if self._folder is None:
            import sys

            from qa.models.onnx_export import ensure_export

            self._folder = ensure_export(
                self.model_dir, log=lambda m: print(f"qa: {m}", file=sys.stderr, flush=True)
            )
        return self._folder

    @property
    def model_file(self) -> Path:
        from qa.models.onnx_export import FP32, INT8

        return self.folder / (INT8 if BACKENDS[self.backend] == "int8" else FP32)

    @property
    def session(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    try:
                        import onnxruntime as ort
                    except ImportError:
                        raise ModelNotFound(
                            "the onnx embedder backend needs onnxruntime: run `make setup` "
                            "or use QA_EMBED_BACKEND=torch"
                        ) from None
                    from qa.models.onnx_export import cpu_session

                    try:
                        session = cpu_session(
                            self.model_file,
                            self.threads,
                            graph_optimization_level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                        )
                    except Exception as exc:  # a damaged file surfaces as several types
                        raise ModelNotFound(
                            f"cannot load the ONNX embedder {self.model_file}: {exc}; delete "
                            f"{self.folder} to export it again"
                        ) from exc
                    self._inputs = {i.name for i in session.get_inputs()}
                    self._session = session
        return self._session

    def _tokenizers(self):
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    from tokenizers import Tokenizer

                    path = str(self.model_dir / "tokenizer.json")
                    spans = Tokenizer.from_file(path)
                    spans.no_truncation()
                    spans.no_padding()
                    tok = Tokenizer.from_file(path)
                    tok.enable_truncation(self._config["max_seq_length"])
                    tok.enable_padding(pad_id=tok.token_to_id("[PAD]") or 0)
                    self._span_tokenizer, self._tokenizer = spans, tok
        return self._tokenizer, self._span_tokenizer

    def export_meta(self) -> tuple[str, str]:
        """(file name, sha256) of the ONNX model the vectors come from, for the manifest."""
        from qa.models.onnx_export import read_meta

        meta = read_meta(self.folder) or {}
        name = self.model_file.name
        return name, meta.get("sha256", {}).get(name, "")

    # --- the Embedder protocol ---------------------------------------------------------

    @property
    def dimension(self) -> int:
        return self._config["dimension"]

    @property
    def max_tokens(self) -> int:
        _, spans = self._tokenizers()
        return self._config["max_seq_length"] - spans.num_special_tokens_to_add(False)

    def _prepare(self, texts: list[str]) -> list[str]:
        return [t.lower() for t in texts] if self._config["do_lower_case"] else texts

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length vectors of `texts`, batched by length (little padding), in order."""
        texts = self._prepare(list(texts))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        session = self.session
        tok, _ = self._tokenizers()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo : lo + self.batch_size]
            with self._run_lock:  # one batch at a time: ONNX Runtime uses every core for one
                enc = tok.encode_batch([texts[i] for i in idx])
                ids = np.array([e.ids for e in enc], dtype=np.int64)
                mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
                feed = {"input_ids": ids, "attention_mask": mask}
                if "token_type_ids" in self._inputs:
                    feed["token_type_ids"] = np.array([e.type_ids for e in enc], dtype=np.int64)
                (states,) = session.run(["last_hidden_state"], feed)
            out[idx] = self._pool(states, mask)
        return out

    def _pool(self, states: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self._config["pooling"] == "cls":
            vecs = states[:, 0]
        else:
            m = mask[:, :, None].astype(np.float32)
            vecs = (states * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        if self._config["normalize"]:
            vecs = vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)
        return vecs.astype(np.float32)

    def token_spans(self, texts: Sequence[str]) -> list[Spans]:
        """Character spans of each text's word pieces (no special tokens, no truncation)."""
        if not texts:
            return []
        _, spans = self._tokenizers()
        with self._spans_lock:
            enc = spans.encode_batch(self._prepare(list(texts)), add_special_tokens=False)
        return [[(int(a), int(b)) for a, b in e.offsets] for e in enc]
