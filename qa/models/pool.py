"""The loaded models of a process: one embedder per model name, one generator per (GGUF
file, context size) and one reader per folder, loaded on first use and shared by every `Engine` (loading is the slow
part, and a server with several indexes should not hold a model twice).

The pool owns them: `close()` frees the generators (llama.cpp memory); the default pool is
closed at interpreter exit, before llama-cpp-python's module globals are torn down.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from pathlib import Path

from qa import config


class ModelPool:
    """Loaded embedders and generators, by key; thread-safe."""

    _default: ModelPool | None = None
    _default_lock = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._embedders: dict[str, object] = {}
        self._generators: dict[tuple[str, int], object] = {}
        self._readers: dict[str, object] = {}

    @classmethod
    def default(cls) -> ModelPool:
        """The process-wide pool."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    def embedder(self, model: str = config.DEFAULT_EMBEDDER, backend: str = "torch"):
        """The embedder of `model` on `backend` (`torch`, `onnx`, `onnx-fp32`)."""
        from qa.models.embedder import make_embedder

        key = f"{model}\0{backend}"
        with self._lock:
            emb = self._embedders.get(key)
            if emb is None:
                emb = self._embedders[key] = make_embedder(model, backend)
            return emb

    def generator(self, path: str | Path, n_ctx: int = 2048, threads: int | None = None):
        """The generator of this GGUF file and context size (loaded on first use)."""
        from qa.models.generator import LlamaGenerator

        key = (str(Path(path).expanduser().resolve()), int(n_ctx))
        with self._lock:
            gen = self._generators.get(key)
            if gen is None:
                gen = self._generators[key] = LlamaGenerator(key[0], n_ctx=n_ctx, threads=threads)
            return gen

    def reader(self, folder: str | Path | None = None, backend: str | None = None):
        """The trained reader in `folder` (default models/reader/), loaded on first use, on
        `backend` ("torch" or "onnx"; None: QA_READER_BACKEND, default onnx)."""
        from qa.models.reader import Reader, default_reader_path

        if backend is None:
            backend = config.Settings.load().reader_backend
        key = str(Path(folder).expanduser().resolve() if folder else default_reader_path())
        with self._lock:
            reader = self._readers.get(f"{key}\0{backend}")
            if reader is None:
                if backend == "onnx":
                    from qa.models.onnx_reader import OnnxReader

                    reader = OnnxReader(key)
                else:
                    reader = Reader(key)
                self._readers[f"{key}\0{backend}"] = reader
            return reader

    def loaded_generators(self) -> list:
        with self._lock:
            return list(self._generators.values())

    def close(self) -> None:
        """Free the generators; embedders hold only Python memory and are dropped."""
        with self._lock:
            for gen in self._generators.values():
                with contextlib.suppress(Exception):  # best effort
                    gen.close()
            self._generators.clear()
            self._embedders.clear()
            self._readers.clear()


@atexit.register
def _close_default() -> None:
    if ModelPool._default is not None:
        ModelPool._default.close()
