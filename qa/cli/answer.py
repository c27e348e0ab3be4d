"""`qa ask`, `qa chat` and `qa doctor`: thin faces over `qa.answer` and the index."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import textwrap
from pathlib import Path

from qa.records import locator_label


def add_commands(command, index_option) -> None:
    def answer_options(p: argparse.ArgumentParser) -> None:
        index_option(p)
        p.add_argument("--model", type=Path, metavar="PATH", help="GGUF model file (or QA_MODEL)")
        which = p.add_mutually_exclusive_group()
        which.add_argument(
            "--llm",
            action="store_true",
            help="the local model writes the answer (its citations are checked); "
            "also implied by --model",
        )
        which.add_argument(
            "--no-llm",
            action="store_true",
            help="extractive mode: quote the best-supporting sentence, no model "
            "(the default, unless QA_MODE=llm)",
        )
        p.add_argument("-k", type=int, metavar="N", help="passages to retrieve (default 5)")
        p.add_argument("--temperature", type=float, metavar="T", help="sampling (default 0)")

    p = command("ask", "answer a question from the indexed documents, with citations", _ask)
    p.add_argument("question")
    answer_options(p)
    p.add_argument(
        "--json",
        action="store_true",
        help='print one object {"answer", "refused", "citations", "timings", ...}',
    )

    p = command("chat", "an interactive conversation (follow-up questions keep context)", _chat)
    answer_options(p)

    p = command("doctor", "check the set-up: models, embedder, index; say what to fix", _doctor)
    index_option(p)
    p.add_argument("--model", type=Path, metavar="PATH", help="GGUF model file to check")


def _settings(args):
    from qa.cli.main import settings_from

    settings = settings_from(args)
    if getattr(args, "temperature", None) is not None:
        settings = settings.with_(temperature=args.temperature)
    return settings


def _mode(args) -> str | None:
    """--no-llm or --llm decide; else None: the engine's rule (--model means llm, else
    QA_MODE, default extractive)."""
    if args.no_llm:
        return "extractive"
    if args.llm:
        return "llm"
    return None


def _engine(args):
    from qa.engine import Engine

    return Engine(_settings(args))


def _stream(question: str, args, engine, history, out) -> object:
    """Run one question; stream pieces to `out` (if given); return the final Answer."""
    from qa.errors import ModelNotFound
    from qa.records import Answer

    streamed: list[str] = []
    stream = None
    try:
        stream = engine.ask_stream(
            question, history, mode=_mode(args), model=args.model if args.model else None
        )
        for item in stream:
            if isinstance(item, Answer):
                return item, "".join(streamed)
            streamed.append(item)
            if out is not None:
                out.write(item)
                out.flush()
    except ModelNotFound as exc:
        raise ModelNotFound(f"{exc} (or answer without a model: --no-llm)") from None
    finally:
        if stream is not None:
            stream.close()
    raise RuntimeError("the answer engine ended without an answer")


def _ask(args) -> int:
    engine = _engine(args)
    out = None if args.json else sys.stdout
    answer, streamed = _stream(args.question, args, engine, None, out)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return 0
    _finish(answer, streamed)
    return 0


def _finish(answer, streamed: str) -> None:
    """After streaming: the verified text if it differs, then the numbered sources."""
    if streamed.strip() != answer.text.strip():
        if streamed.strip():
            print("\n\nVerified answer (citations checked against the sources):")
        print(answer.text, end="")
    print()
    if answer.refused:
        return
    if answer.citations:
        print("\nSources:")
    for c in answer.citations:
        where = f"{c.source}:{c.start}-{c.end}"
        if located := locator_label(c.locator, c.page):
            where += f" ({located})"
        print(f"[{c.n}] {where}")
        quote = " ".join(c.quote.split())
        print(textwrap.fill(f"“{quote}”", 100, initial_indent="    ", subsequent_indent="    "))


HELP = "Ask a question about your documents. /clear starts over, /exit (or Ctrl-D) quits."


def _chat(args) -> int:
    from qa.errors import QAError

    engine = _engine(args)
    _preflight(args, engine)
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    print(HELP)
    history: list = []
    while True:
        try:
            question = input("\n› ").strip()
        except EOFError:
            print()
            return 0
        if not question:
            continue
        if question in ("/exit", "/quit"):
            return 0
        if question == "/clear":
            history.clear()
            print("(conversation cleared)")
            continue
        try:
            answer, streamed = _stream(question, args, engine, history, sys.stdout)
        except KeyboardInterrupt:
            print("\n(stopped)")
            continue
        except QAError as exc:  # one bad turn does not end the session
            print(f"\nqa: error: {exc}", file=sys.stderr)
            continue
        _finish(answer, streamed)
        if answer.query and answer.query != question:
            print(f"(follow-up searched as: {answer.query})")
        history.append(answer)


def _preflight(args, engine) -> None:
    """Fail before the first question if the index or the model is missing."""
    engine.documents()
    req = engine.request(mode=_mode(args), model=args.model)
    if req.mode == "llm" and not req.model.is_file():
        from qa.errors import ModelNotFound
        from qa.models.generator import FIX

        raise ModelNotFound(f"no model file at {req.model}: {FIX} (or use --no-llm)")


# --- doctor ---------------------------------------------------------------------------


class _Report:
    def __init__(self) -> None:
        self.failures = 0

    def ok(self, what: str, detail: str = "") -> None:
        print(f"  ok    {what}" + (f": {detail}" if detail else ""))

    def warn(self, what: str, fix: str) -> None:
        print(f"  warn  {what}: {fix}")

    def fail(self, what: str, fix: str) -> None:
        self.failures += 1
        print(f"  FAIL  {what}: {fix}")


def _sha256(path: Path) -> str:
    from qa.models.files import sha256

    return sha256(path)


def _doctor(args) -> int:
    import importlib.util
    import platform

    from qa import __version__, config

    settings = _settings(args)
    r = _Report()
    print(f"qa {__version__}, Python {platform.python_version()}, {settings.threads} threads")

    print("packages")
    for module, package in [
        ("torch", "torch==2.13.0"),
        ("sentence_transformers", "sentence-transformers"),
        ("faiss", "faiss-cpu"),
        ("llama_cpp", "llama-cpp-python"),
        ("gradio", "gradio"),
    ]:
        if importlib.util.find_spec(module) is None:
            r.fail(package, "not installed: run `make setup`")
        else:
            r.ok(package)

    print("embedder")
    try:
        from qa.models.embedder import get_embedder

        emb = get_embedder(settings.embed_model)
        vec = emb.embed(["a test sentence"])
        if vec.shape != (1, emb.dimension):
            raise ValueError(f"it made vectors of shape {vec.shape}")
        r.ok(emb.name, f"{emb.dimension}-d vectors, {emb.max_tokens} tokens per chunk, loads")
    except Exception as exc:
        r.fail(f"embedder {settings.embed_model}", f"{exc}")

    print("answer model")
    model = Path(settings.model)
    if not model.is_file():
        fix = "missing: run `make model`, or pass --model PATH"
        if settings.mode == "extractive" and not args.model:
            r.warn(str(model), fix + " (needed only for --llm; answers are extractive)")
        else:
            r.fail(str(model), fix + " (or use --no-llm)")
    elif model.name == config.DEFAULT_GGUF and _sha256(model) != config.DEFAULT_GGUF_SHA256:
        r.fail(str(model), "wrong sha256 (damaged?): delete it and run `make model`")
    else:
        try:
            from qa.models.pool import ModelPool

            gen = ModelPool.default().generator(model, settings.n_ctx, settings.threads)
            piece = next(iter(gen.stream("Hello", max_tokens=1, temperature=0.0)), "")
            r.ok(str(model), f"loads, decodes a token ({piece!r})")
        except Exception as exc:
            r.fail(str(model), f"{exc}")

    print("reader")
    if settings.reader == "off":
        r.warn("reader", "off (QA_READER=off): answers use the similarity heuristics")
    else:
        try:
            from qa.models.reader import Reader

            reader = Reader(None if settings.reader == "default" else settings.reader)
            (reading,) = reader.read(
                "Who is the CEO of Ford?", [("Ford's CEO is Jim Farley.", [(0, 25)])]
            )
            m = reader.manifest
            r.ok(
                str(reader.folder),
                f"format {m.get('format_version')}, weights match the manifest, "
                f"reads a passage (p={reading.sentences[0].prob:.2f})",
            )
        except Exception as exc:
            r.fail("reader", f"{exc}")
        else:
            from qa.answer.combine import FILE_NAME, Combiner

            try:
                scorer = Combiner.load(reader.folder)
                if scorer.manifest.get("reader_weights_sha256") != m.get("weights_sha256"):
                    r.fail(
                        str(reader.folder / FILE_NAME),
                        "fitted for other reader weights: run `qa train combiner`",
                    )
                else:
                    t = scorer.thresholds.get("answer")
                    r.ok(str(reader.folder / FILE_NAME), f"evidence scorer, refuses below {t}")
            except Exception as exc:
                r.warn("evidence scorer", f"{exc} (answers use the heuristics to choose)")

    print("index")
    try:
        from qa.engine import Engine

        status = Engine(settings).status()
        if status.vectors != status.chunks:
            r.fail(
                str(settings.index_dir),
                f"{status.chunks} chunks but {status.vectors} vectors: run `qa index --rebuild`",
            )
        elif not status.documents:
            r.warn(str(settings.index_dir), "empty: run `qa index PATH`")
        else:
            r.ok(
                f"{settings.index_dir}/",
                f"{status.documents} documents, {status.chunks} chunks, embedder {status.embedder}",
            )
    except Exception as exc:
        r.fail(str(settings.index_dir), str(exc))

    if r.failures:
        print(f"{r.failures} problem(s) found.")
        return 1
    print("All good.")
    return 0
