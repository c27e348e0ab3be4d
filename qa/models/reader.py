"""The reader: a small cross-encoder fine-tuned from all-MiniLM-L6-v2 (`python -m qa.train
reader`) that reads a question against retrieved passages in one forward pass each and gives

- per sentence, the probability that it answers the question (evidence choice, answerability);
- a short-answer span (character offsets) inside the best sentence of each passage;
- p_yes / p_no for yes/no questions (from the [CLS] state);
- `support()`: the probability that a claim is supported by the sentence it cites.

Input: `[CLS] question [SEP] passage [SEP]`; heads: sentence = MLP over [mean of the
sentence's token states ; CLS], span = linear start/end logits, yes/no and support = linear
over CLS. The weights live in `models/reader/` (fp16 safetensors, tokenizer, manifest.json)
and are loaded on first use, offline. torch and transformers are imported lazily so that
importing this module costs nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qa import config
from qa.errors import ModelNotFound
from qa.models.files import sha256 as sha256_file

FORMAT = "qa-reader"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
MAX_LENGTH = 384  # tokens per (question, passage) input at inference; a 256-piece chunk fits
MAX_SPAN_TOKENS = 30  # longest short answer, in word pieces (SQuAD answers: 99% <= 30)
SENTENCE_HIDDEN = 256  # width of the sentence head's hidden layer


def default_reader_path() -> Path:
    """`models/reader` in the working directory, else in the project checkout."""
    candidates = [Path("models") / "reader", config.PROJECT_ROOT / "models" / "reader"]
    for path in candidates:
        if (path / "manifest.json").is_file():
            return path
    return candidates[0]


@dataclass(frozen=True)
class SentenceScore:
    """One sentence of a passage: its index, character offsets within the passage text, and
    the probability that it answers the question (0.0 if truncated away: never read)."""

    index: int
    start: int
    end: int
    prob: float


@dataclass(frozen=True)
class Reading:
    """What the reader found in one passage. `span_start`/`span_end` are character offsets in
    the passage text of the short answer inside the best sentence (equal when none);
    `span_score` is its start x end probability."""

    sentences: tuple[SentenceScore, ...]
    span_start: int
    span_end: int
    span_score: float
    p_yes: float
    p_no: float

    @property
    def best(self) -> SentenceScore | None:
        """The sentence most likely to answer, or None for a passage without sentences."""
        return max(self.sentences, key=lambda s: s.prob, default=None)


# ----------------------------------------------------------------------------- encoding


@dataclass
class Encoded:
    """A padded batch: tensors for the network plus what decoding needs."""

    input_ids: object
    attention_mask: object
    token_type_ids: object
    sentence_matrix: object  # (B, S, T) float: row s averages sentence s's tokens
    sentence_mask: object  # (B, S) bool: the sentence has at least one token
    offsets: list[list[tuple[int, int]]]  # per example, per token: chars in the second text
    second_tokens: list[list[int]]  # per example: token indices of the second segment
    sentence_tokens: list[list[list[int]]]  # per example, per sentence: its token indices


def encode(
    tokenizer,
    firsts: Sequence[str],
    seconds: Sequence[str],
    sentences: Sequence[Sequence[tuple[int, int]]],
    max_length: int = MAX_LENGTH,
) -> Encoded:
    """Tokenize (first, second) pairs, truncating only the second, and map each sentence
    (character offsets in the second text) to its tokens. Used by training and inference."""
    import torch

    kwargs = dict(max_length=max_length, padding=True, return_offsets_mapping=True)
    try:
        enc = tokenizer(
            list(firsts), list(seconds), truncation="only_second", **kwargs, return_tensors="pt"
        )
    except Exception:  # a first segment alone over max_length (a very long claim): cut both
        enc = tokenizer(
            list(firsts), list(seconds), truncation="longest_first", **kwargs, return_tensors="pt"
        )
    batch, length = enc["input_ids"].shape
    n_sent = max([len(s) for s in sentences] + [1])
    matrix = torch.zeros(batch, n_sent, length)
    mask = torch.zeros(batch, n_sent, dtype=torch.bool)
    offsets_all, second_all, sent_tok_all = map_sentences(
        enc["offset_mapping"].tolist(),
        [enc.sequence_ids(i) for i in range(batch)],
        sentences,
        matrix,
        mask,
    )
    return Encoded(
        enc["input_ids"],
        enc["attention_mask"],
        enc.get("token_type_ids", torch.zeros_like(enc["input_ids"])),
        matrix,
        mask,
        offsets_all,
        second_all,
        sent_tok_all,
    )


def map_sentences(
    offsets: Sequence[Sequence[Sequence[int]]],
    sequence_ids: Sequence[Sequence[int | None]],
    sentences: Sequence[Sequence[tuple[int, int]]],
    matrix,
    mask,
) -> tuple[list[list[tuple[int, int]]], list[list[int]], list[list[list[int]]]]:
    """Map each example's sentences (character offsets in its second text) to its tokens,
    from the tokenizer's per-token offsets and sequence ids: fills `matrix` (B, S, T) with
    each sentence's averaging row and `mask` (B, S) with True for a sentence with tokens
    (torch tensors or numpy arrays alike), and returns `Encoded`'s offsets, second_tokens
    and sentence_tokens. No torch here: the ONNX reader encodes with it too."""
    offsets_all, second_all, sent_tok_all = [], [], []
    for i, (example_offsets, seq) in enumerate(zip(offsets, sequence_ids, strict=True)):
        offs = [(int(a), int(b)) for a, b in example_offsets]
        second = [j for j, s in enumerate(seq) if s == 1]
        per_sentence = []
        k = 0
        for s, (a, b) in enumerate(sentences[i]):
            while k < len(second) and offs[second[k]][1] <= a:
                k += 1
            toks = []
            m = k
            while m < len(second) and offs[second[m]][0] < b:
                toks.append(second[m])
                m += 1
            per_sentence.append(toks)
            if toks:
                matrix[i, s, toks] = 1.0 / len(toks)
                mask[i, s] = True
        offsets_all.append(offs)
        second_all.append(second)
        sent_tok_all.append(per_sentence)
    return offsets_all, second_all, sent_tok_all


def char_span_to_tokens(enc: Encoded, i: int, start: int, end: int) -> tuple[int, int] | None:
    """The (first, last) token indices of example i covering chars [start, end) of its second
    text, or None when the span was truncated away."""
    toks = [
        j
        for j in enc.second_tokens[i]
        if enc.offsets[i][j][1] > start and enc.offsets[i][j][0] < end
    ]
    if not toks:
        return None
    last = enc.offsets[i][enc.second_tokens[i][-1]][1]
    if end > last:
        return None
    return toks[0], toks[-1]


# ----------------------------------------------------------------------------- network


@lru_cache(maxsize=1)
def network_class():
    """The torch module (defined on first use, so that importing this file needs no torch)."""
    import torch
    from torch import nn
    from transformers import BertModel

    class ReaderNet(nn.Module):
        """BERT encoder plus the four heads; forward returns their logits."""

        def __init__(self, bert_config) -> None:
            super().__init__()
            self.encoder = BertModel(bert_config, add_pooling_layer=False)
            h = bert_config.hidden_size
            self.sentence_head = nn.Sequential(
                nn.Linear(2 * h, SENTENCE_HIDDEN), nn.GELU(), nn.Linear(SENTENCE_HIDDEN, 1)
            )
            self.span_head = nn.Linear(h, 2)
            self.yes_no_head = nn.Linear(h, 2)
            self.support_head = nn.Linear(h, 1)

        def forward(self, input_ids, attention_mask, token_type_ids, sentence_matrix):
            states = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            cls = states[:, 0]
            pooled = torch.bmm(sentence_matrix, states)
            both = torch.cat([pooled, cls.unsqueeze(1).expand_as(pooled)], dim=-1)
            sentence = self.sentence_head(both).squeeze(-1)
            start, end = self.span_head(states).unbind(-1)
            return sentence, start, end, self.yes_no_head(cls), self.support_head(cls).squeeze(-1)

    return ReaderNet


def best_span(start_logits, end_logits, tokens: Sequence[int], max_tokens: int = MAX_SPAN_TOKENS):
    """(first, last, probability) of the best span among `tokens` (consecutive indices), with
    probabilities softmaxed over those tokens; None when `tokens` is empty."""
    import torch

    if not tokens:
        return None
    idx = torch.tensor(list(tokens))
    ps = torch.softmax(start_logits[idx].float(), 0)
    pe = torch.softmax(end_logits[idx].float(), 0)
    scores = ps[:, None] * pe[None, :]
    n = len(tokens)
    band = torch.ones(n, n).triu().tril(max_tokens - 1).bool()
    scores = scores.masked_fill(~band, -1.0)
    flat = int(torch.argmax(scores))
    a, b = divmod(flat, n)
    return tokens[a], tokens[b], float(scores[a, b])


def decode(
    passages: Sequence[tuple[str, Sequence[tuple[int, int]]]],
    enc: Encoded,
    probs,
    yes_no,
    start,
    end,
    span=best_span,
) -> list[Reading]:
    """One `Reading` per passage of a batch from the network's outputs (torch tensors or numpy
    arrays): `probs` (B, S) the sentence probabilities (0 where masked), `yes_no` (B, 2) the
    yes/no probabilities, `start`/`end` (B, T) the span logits; the short answer is `span`'s
    (`best_span`, or the ONNX reader's numpy one) inside the best sentence."""
    out: list[Reading] = []
    for i, (_text, sents) in enumerate(passages):
        scores = tuple(
            SentenceScore(k, int(a), int(b), float(probs[i, k])) for k, (a, b) in enumerate(sents)
        )
        found = (0, 0, 0.0)
        if scores:
            best = max(scores, key=lambda s: s.prob).index
            tokens = span(start[i], end[i], enc.sentence_tokens[i][best], MAX_SPAN_TOKENS)
            if tokens:
                a, b, p = tokens
                found = (enc.offsets[i][a][0], enc.offsets[i][b][1], p)
        out.append(
            Reading(scores, found[0], found[1], found[2], float(yes_no[i, 0]), float(yes_no[i, 1]))
        )
    return out


# ----------------------------------------------------------------------------- loading


def read_manifest(folder: Path) -> dict:
    """The reader folder's manifest.json, checked for format; raises ModelNotFound."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise ModelNotFound(f"no reader model at {folder}: run `python -m qa.train reader`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"reader manifest {path} is unreadable: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ModelNotFound(
            f"{path} is not a {FORMAT} v{FORMAT_VERSION} manifest: retrain with `python -m qa.train reader`"
        )
    return manifest


def load_network(folder: Path, check_hash: bool = True):
    """(network in eval mode, tokenizer, manifest) from a reader folder; ModelNotFound if the
    folder, a file or the weights' checksum is wrong."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, BertConfig

    folder = Path(folder)
    manifest = read_manifest(folder)
    weights = folder / WEIGHTS
    if not weights.is_file() or not (folder / "config.json").is_file():
        raise ModelNotFound(
            f"reader model at {folder} is incomplete: {WEIGHTS} or config.json missing"
        )
    expected = manifest.get("weights_sha256")
    if check_hash and expected and sha256_file(weights) != expected:
        raise ModelNotFound(
            f"reader weights {weights} are damaged (sha256 mismatch): retrain or restore them"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, use_fast=True)
        net = network_class()(BertConfig.from_pretrained(str(folder), local_files_only=True))
        state = {k: v.float() for k, v in load_file(str(weights)).items()}
        net.load_state_dict(state)
    except Exception as exc:  # a broken folder surfaces as many exception types
        raise ModelNotFound(f"cannot load the reader from {folder}: {exc}") from exc
    net.eval()
    return net, tokenizer, manifest


# ----------------------------------------------------------------------------- reader


class Reader:
    """The fine-tuned reader, loaded on first use and shared by threads (one lock around
    loading and every forward pass: torch already uses all cores for one pass).

    >>> r = Reader()
    >>> text = "Ford was founded in 1903. Its CEO is Jim Farley."
    >>> [reading] = r.read("Who is the CEO of Ford?", [(text, [(0, 25), (26, 48)])])
    >>> text[reading.span_start:reading.span_end]   # 'Jim Farley'
    """

    def __init__(
        self,
        folder: str | Path | None = None,
        quantize: bool | None = None,
        threads: int | None = None,
    ) -> None:
        self.folder = Path(folder) if folder is not None else default_reader_path()
        self._quantize = quantize
        self._threads = threads
        self._net = None
        self._tokenizer = None
        self._manifest: dict | None = None
        self._lock = threading.RLock()
        read_manifest(self.folder)  # fail fast, with a one-line message

    def _load(self):
        if self._net is None:
            with self._lock:
                if self._net is None:
                    import torch

                    if self._threads:
                        torch.set_num_threads(self._threads)
                    net, tok, manifest = load_network(self.folder)
                    quantize = manifest.get("inference", {}).get("quantize_int8", False)
                    if self._quantize is not None:
                        quantize = self._quantize
                    if quantize:
                        net = torch.ao.quantization.quantize_dynamic(
                            net, {torch.nn.Linear}, dtype=torch.qint8
                        )
                    self._tokenizer, self._manifest = tok, manifest
                    self._net = net
        return self._net

    @property
    def manifest(self) -> dict:
        """The training manifest (split, hyperparameters, thresholds, measured figures)."""
        if self._manifest is None:
            self._manifest = read_manifest(self.folder)
        return self._manifest

    @property
    def thresholds(self) -> dict[str, float]:
        """Thresholds calibrated on the train part's held-out slice (see manifest.json)."""
        return dict(self.manifest.get("thresholds", {}))

    def read(
        self,
        question: str,
        passages: Sequence[tuple[str, Sequence[tuple[int, int]]]],
        batch_size: int = 8,
    ) -> list[Reading]:
        """One `Reading` per (passage text, sentence offsets) pair, in order."""
        import torch

        net = self._load()
        out: list[Reading] = []
        for lo in range(0, len(passages), batch_size):
            chunk = passages[lo : lo + batch_size]
            with self._lock:
                enc = encode(
                    self._tokenizer,
                    [question] * len(chunk),
                    [t for t, _ in chunk],
                    [list(s) for _, s in chunk],
                )
                with torch.inference_mode():
                    sent, start, end, yes_no, _ = net(
                        enc.input_ids, enc.attention_mask, enc.token_type_ids, enc.sentence_matrix
                    )
            probs = torch.sigmoid(sent).masked_fill(~enc.sentence_mask, 0.0)
            out += decode(chunk, enc, probs, torch.softmax(yes_no, -1), start, end)
        return out

    def support_many(
        self, question: str, pairs: Sequence[tuple[str, str]], batch_size: int = 16
    ) -> list[float]:
        """For each (claim, cited sentence): the probability the sentence supports the claim."""
        import torch

        net = self._load()
        out: list[float] = []
        for lo in range(0, len(pairs), batch_size):
            chunk = pairs[lo : lo + batch_size]
            with self._lock:
                enc = encode(
                    self._tokenizer,
                    [support_first(question, c) for c, _ in chunk],
                    [s for _, s in chunk],
                    [[] for _ in chunk],
                )
                with torch.inference_mode():
                    *_, sup = net(
                        enc.input_ids, enc.attention_mask, enc.token_type_ids, enc.sentence_matrix
                    )
            out += [float(x) for x in torch.sigmoid(sup)]
        return out

    def support(self, question: str, claim: str, sentence: str) -> float:
        """The probability that `sentence` supports `claim` (an answer to `question`)."""
        return self.support_many(question, [(claim, sentence)])[0]


def support_first(question: str, claim: str) -> str:
    """The first segment of a claim-support input: question, a separator, the claim."""
    return f"{question} [SEP] {claim}"


_CACHE: dict[str, Reader] = {}
_CACHE_LOCK = threading.Lock()


def get_reader(folder: str | Path | None = None) -> Reader:
    """One Reader per folder per process (loading is the slow part)."""
    key = str(Path(folder) if folder is not None else default_reader_path())
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = Reader(key)
        return _CACHE[key]
