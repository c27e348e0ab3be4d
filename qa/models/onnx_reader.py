"""The trained reader's network run by ONNX Runtime, so extractive answers need no torch.

`qa.models.reader` defines the reader (a MiniLM cross-encoder with four heads) in torch;
this module exports that torch module to ONNX once (`export_reader`, into
`models/onnx/reader-<key>/`, keyed by the weights' checksum) and runs it with ONNX Runtime,
tokenized by the `tokenizers` library and decoded in numpy. `OnnxReader` has the `Reader`
methods the answer pipeline calls (`read`, `support_many`, `support`, `manifest`,
`thresholds`) and gives the same numbers to float precision (fp32 export; a reader whose
manifest asks for int8 is quantized by ONNX Runtime instead of torch).

It is used when `QA_READER_BACKEND=onnx` (see `qa.models.pool.ModelPool.reader`).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.errors import ModelNotFound
from qa.models.onnx_export import cache_root, cpu_session, export_once, trace
from qa.models.reader import (
    MAX_LENGTH,
    MAX_SPAN_TOKENS,
    Encoded,
    decode,
    default_reader_path,
    encode,
    load_network,
    map_sentences,
    read_manifest,
    support_first,
)

MODEL = "reader.onnx"
META = "export.json"
EXPORT_VERSION = 1
OUTPUTS = ["sentence", "start", "end", "yes_no", "support"]


def export_dir(folder: Path) -> Path:
    manifest = read_manifest(folder)
    key = (manifest.get("weights_sha256") or "unknown")[:12]
    return cache_root() / f"reader-{key}-v{EXPORT_VERSION}"


def export_reader(folder: Path, log=None) -> Path:
    """The ONNX export of the reader in `folder` (exported now if missing): needs torch."""
    return export_once(
        export_dir(folder),
        lambda out: (out / META).is_file(),
        lambda staging: _export(folder, staging),
        "the reader",
        log,
    )


def _export(folder: Path, out: Path) -> None:
    net, tokenizer, manifest = load_network(folder)
    enc = encode(
        tokenizer,
        ["Who is the CEO?", "Is it?"],
        ["Ford was founded in 1903. Its CEO is Jim Farley.", "Yes it is."],
        [[(0, 25), (26, 48)], [(0, 10)]],
    )
    args = (enc.input_ids, enc.attention_mask, enc.token_type_ids, enc.sentence_matrix)
    names = ["input_ids", "attention_mask", "token_type_ids", "sentence_matrix"]
    axes = {n: {0: "batch", 1: "tokens"} for n in names[:3]}
    axes["sentence_matrix"] = {0: "batch", 1: "sentences", 2: "tokens"}
    axes.update(
        sentence={0: "batch", 1: "sentences"},
        start={0: "batch", 1: "tokens"},
        end={0: "batch", 1: "tokens"},
        yes_no={0: "batch"},
        support={0: "batch"},
    )
    raw = out / MODEL
    trace(net, args, raw, names, OUTPUTS, axes)
    if manifest.get("inference", {}).get("quantize_int8", False):
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = out / "reader_qint8.onnx"
        quantize_dynamic(str(raw), str(quantized), weight_type=QuantType.QInt8)
        os.replace(quantized, raw)
    shutil.copyfile(folder / "tokenizer.json", out / "tokenizer.json")
    (out / META).write_text(
        json.dumps({"source": str(folder), "weights_sha256": manifest.get("weights_sha256")})
        + "\n",
        encoding="utf-8",
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def best_span(
    start: np.ndarray, end: np.ndarray, tokens: Sequence[int], max_tokens: int = MAX_SPAN_TOKENS
):
    """`qa.models.reader.best_span` in numpy: (first, last, probability) or None."""
    if not tokens:
        return None
    idx = np.asarray(tokens)
    ps = _softmax(start[idx].astype(np.float32), 0)
    pe = _softmax(end[idx].astype(np.float32), 0)
    scores = ps[:, None] * pe[None, :]
    n = len(tokens)
    band = np.triu(np.ones((n, n), dtype=bool)) & np.tril(
        np.ones((n, n), dtype=bool), max_tokens - 1
    )
    scores = np.where(band, scores, -1.0)
    a, b = divmod(int(np.argmax(scores)), n)
    return tokens[a], tokens[b], float(scores[a, b])


class OnnxReader:
    """The reader through ONNX Runtime: `read`, `support_many`, `support` like `Reader`."""

    def __init__(self, folder: str | Path | None = None, threads: int | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_reader_path()
        self.threads = threads
        self._manifest = read_manifest(self.folder)  # fail fast, with a one-line message
        self._session = None
        self._tokenizer = None
        self._lock = threading.RLock()

    @property
    def manifest(self) -> dict:
        return self._manifest

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self._manifest.get("thresholds", {}))

    def _load(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import sys

                    from tokenizers import Tokenizer

                    out = export_reader(
                        self.folder, log=lambda m: print(f"qa: {m}", file=sys.stderr, flush=True)
                    )
                    try:
                        session = cpu_session(out / MODEL, self.threads)
                    except Exception as exc:
                        raise ModelNotFound(
                            f"cannot load the ONNX reader in {out}: {exc}; delete the folder "
                            "to export it again"
                        ) from exc
                    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
                    tok.enable_padding(pad_id=tok.token_to_id("[PAD]") or 0)
                    self._tokenizer, self._session = tok, session
        return self._session

    def _encode(self, firsts, seconds, sentences) -> Encoded:
        """`qa.models.reader.encode` with numpy arrays (same tokens, truncation and sentence
        map), by the `tokenizers` library: no torch."""
        max_length = MAX_LENGTH  # as Reader.read uses it
        tok = self._tokenizer
        pairs = list(zip(firsts, seconds, strict=True))
        try:
            tok.enable_truncation(max_length, strategy="only_second")
            enc = tok.encode_batch(pairs)
        except Exception:  # the first segment alone is too long: cut both
            tok.enable_truncation(max_length, strategy="longest_first")
            enc = tok.encode_batch(pairs)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        batch, length = ids.shape
        n_sent = max([len(s) for s in sentences] + [1])
        matrix = np.zeros((batch, n_sent, length), dtype=np.float32)
        mask = np.zeros((batch, n_sent), dtype=bool)
        offsets, second, sentence_tokens = map_sentences(
            [e.offsets for e in enc], [e.sequence_ids for e in enc], sentences, matrix, mask
        )
        return Encoded(
            ids,
            np.array([e.attention_mask for e in enc], dtype=np.int64),
            np.array([e.type_ids for e in enc], dtype=np.int64),
            matrix,
            mask,
            offsets,
            second,
            sentence_tokens,
        )

    def _run(self, enc: Encoded) -> list[np.ndarray]:
        feed = {
            "input_ids": enc.input_ids,
            "attention_mask": enc.attention_mask,
            "token_type_ids": enc.token_type_ids,
            "sentence_matrix": enc.sentence_matrix,
        }
        names = {i.name for i in self._session.get_inputs()}
        return self._session.run(OUTPUTS, {k: v for k, v in feed.items() if k in names})

    def read(self, question: str, passages, batch_size: int = 8):
        self._load()
        out = []
        for lo in range(0, len(passages), batch_size):
            chunk = passages[lo : lo + batch_size]
            with self._lock:
                enc = self._encode(
                    [question] * len(chunk), [t for t, _ in chunk], [list(s) for _, s in chunk]
                )
                sent, start, end, yes_no, _ = self._run(enc)
            probs = np.where(enc.sentence_mask, _sigmoid(sent), 0.0)
            out += decode(chunk, enc, probs, _softmax(yes_no, -1), start, end, span=best_span)
        return out

    def support_many(self, question: str, pairs, batch_size: int = 16) -> list[float]:
        self._load()
        out: list[float] = []
        for lo in range(0, len(pairs), batch_size):
            chunk = pairs[lo : lo + batch_size]
            with self._lock:
                enc = self._encode(
                    [support_first(question, c) for c, _ in chunk],
                    [s for _, s in chunk],
                    [[] for _ in chunk],
                )
                *_, sup = self._run(enc)
            out += [float(x) for x in _sigmoid(sup)]
        return out

    def support(self, question: str, claim: str, sentence: str) -> float:
        return self.support_many(question, [(claim, sentence)])[0]
