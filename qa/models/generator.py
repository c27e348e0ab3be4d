"""Text generation: the `Generator` protocol the answer engine depends on, and its
llama-cpp-python implementation for local GGUF models.

One `LlamaGenerator` per (model path, context size) per process (`load_generator`), because
loading is the slow part; a lock serialises generation because one `llama_cpp.Llama` is not
re-entrant. Prompts are chat messages rendered with the chat template stored in the GGUF
metadata (a completion-style "... Answer:" prompt for base models without one), so the prompt that is
counted is exactly the prompt that is evaluated. A missing or unreadable model file raises
`ModelNotFound` that names the fix; llama.cpp's own errors never reach the user.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from qa.errors import ModelNotFound

FIX = "run `make model`, or pass --model PATH to a GGUF file"
PROMPT_CACHE_BYTES = 256 << 20  # llama.cpp states of earlier prompts kept in RAM for reuse


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user" or "assistant"
    content: str


@runtime_checkable
class Generator(Protocol):
    """What the answer engine needs from a language model."""

    name: str
    n_ctx: int

    def render(self, messages: Sequence[Message]) -> str:
        """The exact prompt text `stream` evaluates for these messages."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        grammar: str | None = None,
    ) -> Iterator[str]:
        """Generate a continuation of `prompt`, yielding text pieces as they are made."""
        ...


def completion_prompt(messages: Sequence[Message]) -> str:
    """A completion-style prompt for base models (no chat template): the instructions, then
    each exchange as its text followed by "Answer: ...", ending with an open "Answer:"."""
    parts = []
    for m in messages:
        if m.role == "assistant":
            parts[-1] += f"\nAnswer: {m.content}"
        else:
            parts.append(m.content.strip())
    return "\n\n".join(parts) + "\nAnswer:"


class LlamaGenerator:
    """A GGUF model run by llama-cpp-python."""

    def __init__(
        self,
        path: str | Path,
        n_ctx: int = 2048,
        threads: int | None = None,
        prompt_cache: bool = True,
    ) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self._lock = threading.Lock()
        self.llm = _load_llama(self.path, n_ctx, threads)
        self.n_ctx = int(self.llm.n_ctx())
        self._formatter = None
        self._stops: list[str] = []
        template = (self.llm.metadata or {}).get("tokenizer.chat_template")
        if template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            eos = self._token_text(self.llm.token_eos())
            bos = self._token_text(self.llm.token_bos())
            self._formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
            self._stops = [eos] if eos else []
        self.has_chat_template = self._formatter is not None
        self.cache = None
        if prompt_cache:
            self.set_prompt_cache(True)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    def set_prompt_cache(self, enabled: bool) -> None:
        """Keep llama.cpp states of earlier prompts in RAM, so a prompt that shares a prefix
        with an earlier one (the instructions and examples, a conversation's earlier turns)
        only evaluates what is new, even if other prompts were run in between."""
        with self._lock:
            self.cache = _prompt_cache() if enabled else None
            self.llm.set_cache(self.cache)

    def reset(self) -> None:
        """Forget the evaluated context (and the prompt cache): the next prompt starts cold."""
        with self._lock:
            self.llm.reset()
            if self.cache is not None:
                self.cache = _prompt_cache()
                self.llm.set_cache(self.cache)

    def render(self, messages: Sequence[Message]) -> str:
        if self._formatter is None:
            return completion_prompt(messages)
        result = self._formatter(
            messages=[{"role": m.role, "content": m.content} for m in messages]
        )
        return result.prompt

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        grammar: str | None = None,
    ) -> Iterator[str]:
        compiled = None
        if grammar:
            from llama_cpp import LlamaGrammar

            compiled = LlamaGrammar.from_string(grammar, verbose=False)
        tokens = self.tokenize(prompt)
        room = self.n_ctx - len(tokens)
        if room < 1:
            raise ValueError(f"prompt of {len(tokens)} tokens does not fit in {self.n_ctx}")
        # The model runs in a thread of its own that holds the lock and hands pieces over a
        # queue: the lock is never held across this generator's `yield`, so a stream the
        # caller closes stops at the next token, and one it abandons without closing still
        # ends within `max_tokens` and releases the model.
        pieces: queue.SimpleQueue = queue.SimpleQueue()
        cancel = threading.Event()

        def produce() -> None:
            try:
                with self._lock:
                    if cancel.is_set():
                        return
                    self._generate(
                        tokens, min(max_tokens, room), temperature, stop, compiled, pieces, cancel
                    )
            except BaseException as exc:  # handed to the consumer, raised there
                pieces.put(_Failed(exc))
            finally:
                pieces.put(_DONE)

        worker = threading.Thread(target=produce, name="qa-generate", daemon=True)
        worker.start()
        try:
            while True:
                item = pieces.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
        finally:
            cancel.set()

    def _generate(self, tokens, max_tokens, temperature, stop, grammar, out, cancel) -> None:
        """Run the model (the caller holds the lock), putting text pieces on `out`."""
        if len(tokens) > 1:
            # Evaluate all but the last prompt token first (reusing whatever prefix the
            # context or the prompt cache already holds), so the last token is always
            # evaluated alone: batch shapes change llama.cpp's float rounding, and this
            # keeps greedy output identical whether the prompt was cached or not.
            for _ in self.llm.create_completion(tokens[:-1], max_tokens=1, stream=True):
                pass
        stream = self.llm.create_completion(
            tokens,
            max_tokens=max_tokens,
            temperature=temperature,
            top_k=1 if temperature <= 0 else 40,
            repeat_penalty=1.0,
            stop=[*self._stops, *stop],
            grammar=grammar,
            stream=True,
            seed=0,
        )
        try:
            for piece in stream:
                if cancel.is_set():
                    return
                text = piece["choices"][0]["text"]
                if text:
                    out.put(text)
        finally:
            stream.close()

    def close(self) -> None:
        """Free the model's memory (waits for a generation in progress to finish)."""
        with self._lock:
            self.llm.close()


_DONE = object()


@dataclass(frozen=True)
class _Failed:
    exc: BaseException


def _prompt_cache(capacity: int = PROMPT_CACHE_BYTES):
    """A `LlamaRAMCache` whose memory is bounded. llama-cpp-python saves with every state a
    copy of the logits of every prompt token (n_tokens x n_vocab floats: 0.7 GB for Gemma 3 at
    700 tokens) and counts none of it against the capacity, so a server's memory grew without
    bound. Only the last row is kept (generation resumes from it; earlier rows serve
    `logits_all`, which qa does not use), and the whole state is counted."""
    from llama_cpp import LlamaRAMCache
    from llama_cpp.llama import LlamaState

    class CompactRAMCache(LlamaRAMCache):
        @property
        def cache_size(self) -> int:
            return sum(
                s.llama_state_size + s.scores.nbytes + s.input_ids.nbytes
                for s in self.cache_state.values()
            )

        def __setitem__(self, key, value) -> None:
            compact = LlamaState(
                input_ids=value.input_ids,
                scores=value.scores[-1:].copy(),  # restored by broadcasting on load
                n_tokens=value.n_tokens,
                llama_state=value.llama_state,
                llama_state_size=value.llama_state_size,
                seed=value.seed,
            )
            super().__setitem__(key, compact)

    return CompactRAMCache(capacity_bytes=capacity)


_LOG_CALLBACK = None


def _quiet_llama_log() -> None:
    """Send llama.cpp's own log lines to Python logging (logger "qa.llama"), not stderr:
    llama-cpp-python prints lines of level NONE even when not verbose (Gemma 3's
    "llama_kv_cache_iswa: using full-size SWA cache" on every context)."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    import ctypes
    import logging

    import llama_cpp

    log = logging.getLogger("qa.llama")

    @llama_cpp.llama_log_callback
    def callback(level, text, user_data):
        log.debug("%s", text.decode("utf-8", errors="replace").rstrip())

    _LOG_CALLBACK = callback  # a reference, so the C side never calls a freed callback
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def _load_llama(path: Path, n_ctx: int, threads: int | None):
    if not path.is_file():
        raise ModelNotFound(f"model file {path} not found: {FIX}")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelNotFound(f"cannot read model file {path}: {exc.strerror}; {FIX}") from None
    if magic != b"GGUF":
        raise ModelNotFound(f"{path} is not a GGUF model file: {FIX}")
    try:
        from llama_cpp import Llama
    except ImportError:
        raise ModelNotFound("llama-cpp-python is not installed: run `make setup`") from None
    _quiet_llama_log()
    threads = threads or max(1, len(os.sched_getaffinity(0)))
    try:
        return Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelNotFound(f"cannot load model {path} (damaged or unsupported GGUF); {FIX}") from (
            exc
        )


def load_generator(
    path: str | Path, n_ctx: int = 2048, threads: int | None = None
) -> LlamaGenerator:
    """The generator of this model file and context size from the process's model pool."""
    from qa.models.pool import ModelPool

    return ModelPool.default().generator(path, n_ctx, threads)
