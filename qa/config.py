"""One frozen `Settings` object: built-in defaults, then `QA_*` environment variables,
then explicit overrides (CLI flags or keyword arguments), in that order of precedence.

Importing this module also switches every Hugging Face library to offline mode with
telemetry off: `qa` never contacts a model hub.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from qa.errors import BadInput

# Offline, always: these must be set before transformers / huggingface_hub are imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bars
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
K_MAX = 50  # passages one answer or search may ask for
MAX_TEMPERATURE = 2.0  # llama.cpp samples above this, but answers are noise by then
DEFAULT_MAX_UPLOAD_MB = 50.0  # per uploaded file, in the browser chat
# QA_FAISS_FACTORY: "auto" (exact below a size, approximate above: qa.index.vectors), "Flat",
# "HNSW<M>" / "HNSW<M>,SQ8", or "IVF[<lists>],Flat|SQ8|PQ<parts>"
FAISS_FACTORY_RE = re.compile(
    r"^(auto|Flat|HNSW([1-9][0-9]*)(,Flat|,SQ8)?|IVF([1-9][0-9]*)?,(Flat|SQ8|PQ[1-9][0-9]*))$"
)
BM25_ENGINES = ("auto", "fts5", "memory")  # QA_BM25: see Settings.bm25
# Embedder backends: torch (sentence-transformers fp32), onnx (ONNX Runtime, int8-quantized
# export), onnx-fp32 (the export unquantized). "auto": an existing index's own backend, the
# measured default for a new one (README "Measured": qa bench index, qa eval).
EMBED_BACKENDS = ("torch", "onnx", "onnx-fp32")
# QA_RAY_ADDRESS (the cluster `qa index --ray` joins): "local" (a Ray instance started for
# the run), "auto" (the one `ray start` made on this machine), HOST:PORT or ray://HOST:PORT
RAY_ADDRESS_RE = re.compile(
    r"^(local|auto|(ray://)?([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):\d{1,5})$"
)
DEFAULT_EMBED_BACKEND = "onnx"


def default_model_path() -> Path:
    """`models/<default gguf>` in the working directory, else in the project checkout."""
    candidates = [Path("models") / DEFAULT_GGUF, PROJECT_ROOT / "models" / DEFAULT_GGUF]
    for path in candidates:
        if path.is_file():
            return path
    return candidates[0]


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# name -> (environment variable, converter)
_ENV = {
    "index_dir": ("QA_INDEX", Path),
    "embed_model": ("QA_EMBED_MODEL", str),
    "chunk_tokens": ("QA_CHUNK_TOKENS", int),
    "chunk_overlap": ("QA_CHUNK_OVERLAP", int),
    "k": ("QA_K", int),
    "fusion": ("QA_FUSION", str),
    "faiss_factory": ("QA_FAISS_FACTORY", str),
    "bm25": ("QA_BM25", str),
    "model": ("QA_MODEL", Path),
    "n_ctx": ("QA_N_CTX", int),
    "max_answer_tokens": ("QA_MAX_TOKENS", int),
    "temperature": ("QA_TEMPERATURE", float),
    "threads": ("QA_THREADS", int),
    "mode": ("QA_MODE", str),
    "max_file_mb": ("QA_MAX_FILE_MB", float),
    "max_chunks_per_file": ("QA_MAX_CHUNKS_PER_FILE", int),
    "max_upload_mb": ("QA_MAX_UPLOAD_MB", float),
    "auth": ("QA_AUTH", str),
    "api_key": ("QA_API_KEY", str),
    "reader": ("QA_READER", str),
    "ocr": ("QA_OCR", lambda raw: raw.strip().lower() not in ("0", "false", "no", "off")),
    "embed_backend": ("QA_EMBED_BACKEND", str),
    "reader_backend": ("QA_READER_BACKEND", str),
    "ray_address": ("QA_RAY_ADDRESS", str),
    "ray_workers": ("QA_RAY_WORKERS", int),
}


@dataclass(frozen=True)
class Settings:
    index_dir: Path = Path("index")
    embed_model: str = DEFAULT_EMBEDDER
    chunk_tokens: int = 256  # capped at what the embedder reads (254 for all-MiniLM-L6-v2)
    chunk_overlap: int = 32
    k: int = 5
    fusion: str = "weighted"
    # "auto": exact (Flat) below 100k vectors, IVF above (SQ8 codes from 4M), probing 1/16 of
    # the lists: recall@10 .985 against exact search at 1M vectors shaped like real
    # embeddings, 7-8 ms of CPU a search (`qa bench search --sizes 1000000`; README "Measured").
    faiss_factory: str = "auto"
    # The BM25 engine: "fts5" (SQLite's FTS5 query), "memory" (an in-memory inverted index
    # kept in step with the store, the same results: qa.index.lexical), or "auto": memory
    # from qa.index.store.BM25_MEMORY_MIN (100k) chunks on (at 1M: 22.6 against 261 ms of CPU).
    bm25: str = "auto"
    model: Path = field(default_factory=default_model_path)
    n_ctx: int = 2048
    max_answer_tokens: int = 160
    temperature: float = 0.0
    threads: int = field(default_factory=_cpu_count)
    # How answers are made when not asked otherwise: "extractive" (quote the best-supporting
    # sentence) or "llm" (the GGUF model writes the answer; its citations are checked).
    # Extractive is the default because it measured better: on SQuAD dev it ties the default
    # model on citation precision (.787 vs .783) and contains the gold answer more often (.72 vs
    # .66); on CLAPnq it has higher F1 (.325 vs .242) and citation precision (.70 vs .60).
    # Gemma 3 270M measured no better than SmolLM2 and is 2-3x slower. See README "Measured".
    mode: str = "extractive"
    # Indexing limits per file (a file over either is skipped with a message, never cut short).
    # 100 MB on disk: PDFs and DOCX files with images reach tens of MB with modest text.
    # 10,000 passages: about 2.5 million tokens (a 4,000-page book, ~10 MB of plain text),
    # several minutes of embedding on a laptop CPU; more is rarely one document.
    max_file_mb: float = 100.0
    max_chunks_per_file: int = 10_000
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    # "user:password" for the browser chat's login (needed off loopback); None: no login
    auth: str | None = None
    # the Bearer key every /v1 API call must carry (needed off loopback); None: no key.
    # Not in the repr, so a logged Settings does not show it.
    api_key: str | None = field(default=None, repr=False)
    # The trained reader that chooses evidence, refuses and gives short answers: "default"
    # (models/reader/), a folder, or "off" (similarity heuristics instead; for comparison).
    reader: str = "default"
    # OCR (Tesseract) of scanned PDF pages and images when indexing: QA_OCR=0 or --no-ocr
    # turns it off (qa.ingest.ocr reads QA_OCR, so loader processes see it too)
    ocr: bool = True
    # The embedder backend (see EMBED_BACKENDS); "auto": what the index was built with.
    embed_backend: str = "auto"
    # How the trained reader runs: "onnx" (its network exported to ONNX Runtime at set-up,
    # qa.models.onnx_reader: no torch in the process; the same numbers to 1e-4) or "torch"
    # (qa.models.reader). onnx is the default by measurement: `qa bench ask` (2026-12-03,
    # 2 cores under load): warm extractive ask p50 0.43 s against 1.56 s on torch, the reader
    # 3.5x faster; and a cold `qa ask` does not import torch.
    reader_backend: str = "onnx"
    # `qa index --ray` with no ADDRESS: the Ray cluster to join (None: start a local one), and
    # its embedding actors (None: three quarters of the cluster's CPUs; qa.scale.ray_ingest)
    ray_address: str | None = None
    ray_workers: int | None = None

    def __post_init__(self) -> None:
        def bad(var: str, message: str) -> BadInput:
            return BadInput(f"{message} ({var})")

        if self.chunk_tokens < 16:
            raise bad(
                "QA_CHUNK_TOKENS", f"chunk size must be at least 16 tokens, got {self.chunk_tokens}"
            )
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise bad(
                "QA_CHUNK_OVERLAP",
                f"chunk overlap must be between 0 and the chunk size ({self.chunk_tokens}), "
                f"got {self.chunk_overlap}",
            )
        if not 1 <= self.k <= K_MAX:
            raise bad("QA_K", f"k must be between 1 and {K_MAX}, got {self.k}")
        if self.mode not in ("llm", "extractive"):
            raise bad("QA_MODE", f"answer mode must be 'llm' or 'extractive', got {self.mode!r}")
        if self.fusion not in ("rrf", "weighted"):
            raise bad("QA_FUSION", f"fusion must be 'rrf' or 'weighted', got {self.fusion!r}")
        if self.bm25 not in BM25_ENGINES:
            raise bad("QA_BM25", f"the BM25 engine must be auto, fts5 or memory, got {self.bm25!r}")
        m = FAISS_FACTORY_RE.match(self.faiss_factory)
        if m is None or not 4 <= int(m.group(2) or 32) <= 128:
            raise bad(
                "QA_FAISS_FACTORY",
                f"unknown FAISS index type {self.faiss_factory!r}: use auto, Flat, HNSW32, "
                "HNSW32,SQ8, IVF,Flat, IVF4096,SQ8 or IVF,PQ48 (HNSW links 4-128)",
            )
        if not 0.0 <= self.temperature <= MAX_TEMPERATURE:
            raise bad(
                "QA_TEMPERATURE",
                f"temperature must be between 0 and {MAX_TEMPERATURE}, got {self.temperature}",
            )
        if self.n_ctx < 256:
            raise bad("QA_N_CTX", f"the context must hold at least 256 tokens, got {self.n_ctx}")
        if not 1 <= self.max_answer_tokens < self.n_ctx:
            raise bad(
                "QA_MAX_TOKENS",
                f"the answer length must be between 1 and the context size ({self.n_ctx}) "
                f"less one, got {self.max_answer_tokens}",
            )
        if self.threads < 1:
            raise bad("QA_THREADS", f"threads must be at least 1, got {self.threads}")
        if not self.max_file_mb > 0:
            raise bad(
                "QA_MAX_FILE_MB", f"the file size limit must be positive, got {self.max_file_mb} MB"
            )
        if self.max_chunks_per_file < 1:
            raise bad(
                "QA_MAX_CHUNKS_PER_FILE",
                f"the passages-per-file limit must be at least 1, got {self.max_chunks_per_file}",
            )
        if not self.max_upload_mb > 0:
            raise bad(
                "QA_MAX_UPLOAD_MB",
                f"the upload size limit must be positive, got {self.max_upload_mb} MB",
            )
        if self.embed_backend not in ("auto", *EMBED_BACKENDS):
            raise bad(
                "QA_EMBED_BACKEND",
                f"the embedder backend must be one of auto, {', '.join(EMBED_BACKENDS)}; "
                f"got {self.embed_backend!r}",
            )
        if self.reader_backend not in ("torch", "onnx"):
            raise bad(
                "QA_READER_BACKEND",
                f"the reader backend must be 'torch' or 'onnx', got {self.reader_backend!r}",
            )
        if self.ray_address is not None and not RAY_ADDRESS_RE.match(self.ray_address):
            raise bad(
                "QA_RAY_ADDRESS",
                f"unknown Ray address {self.ray_address!r}: use local, auto, HOST:PORT or "
                "ray://HOST:PORT (and put --ray after the paths: `qa index PATH --ray`)",
            )
        if self.ray_workers is not None and self.ray_workers < 1:
            raise bad("QA_RAY_WORKERS", f"Ray workers must be at least 1, got {self.ray_workers}")
        if not str(self.reader).strip():
            raise bad("QA_READER", "the reader must be 'default', 'off' or a folder")
        if self.auth is not None:
            user, sep, password = self.auth.partition(":")
            if not sep or not user.strip() or not password:
                raise bad("QA_AUTH", "the login must be USER:PASSWORD with both parts non-empty")
        if self.api_key is not None:
            key = self.api_key
            # a key travels in an HTTP header: printable ASCII, no spaces, nothing to trim
            if (
                not key
                or not key.isascii()
                or not key.isprintable()
                or any(c.isspace() for c in key)
            ):
                raise bad(
                    "QA_API_KEY",
                    "the API key must be non-empty printable ASCII without spaces",
                )

    def build_backend(self) -> str:
        """The backend a new index is built with: the configured one, or the default."""
        return DEFAULT_EMBED_BACKEND if self.embed_backend == "auto" else self.embed_backend

    def login(self) -> tuple[str, str] | None:
        """The chat login as (user, password), or None."""
        if self.auth is None:
            return None
        user, _, password = self.auth.partition(":")
        return user.strip(), password

    @classmethod
    def load(cls, **overrides) -> Settings:
        """Defaults, then `QA_*` environment variables, then non-None `overrides`."""
        values = {}
        for name, (var, convert) in _ENV.items():
            raw = os.environ.get(var)
            if raw not in (None, ""):
                try:
                    values[name] = convert(raw)
                except ValueError:
                    kind = {"int": "whole number", "float": "number"}.get(convert.__name__, "value")
                    raise BadInput(f"{var}={raw!r} is not a valid {kind}") from None
        known = {f.name for f in fields(cls)}
        for name, value in overrides.items():
            if name not in known:
                raise TypeError(f"unknown setting {name!r}")
            if value is not None:
                values[name] = value
        if "index_dir" in values:
            values["index_dir"] = Path(values["index_dir"])
        if "model" in values:
            values["model"] = Path(values["model"])
        return cls(**values)

    def with_(self, **changes) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
