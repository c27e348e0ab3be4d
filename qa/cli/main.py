"""The `qa` command line: a thin layer over the `qa` library.

Errors the library raises on purpose (`QAError`) become one line on stderr and an exit
code; anything else is a bug and shows a traceback only with `--debug`.

Exit codes: 0 success; 1 error; 2 bad input or usage; 3 partial success (`qa index`:
some files looked like documents but could not be read); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from qa import __version__
from qa.records import locator_label

PARTIAL = 3


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # sub-tools with their own argument parsers
    if argv[:1] == ["bench"]:
        return _run_tool(_bench, argv[1:], "--debug" in argv)
    if argv[:1] == ["eval"]:
        return _run_tool(_eval, argv[1:], "--debug" in argv)
    if argv[:1] == ["train"]:
        return _run_tool(_train, argv[1:], "--debug" in argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return _run_tool(lambda _: args.func(args), argv, args.debug)


def _run_tool(func, argv, debug: bool) -> int:
    from qa.errors import QAError

    try:
        return int(func(argv) or 0)
    except QAError as exc:
        if debug:
            raise
        print(f"qa: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("qa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `qa search ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug: say so in one line, full detail with --debug
        if debug:
            raise
        print(
            f"qa: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return 1


# --- parser ---------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse without abbreviated options, for every command (subcommands' parsers are of
    their parent's class): `qa ask --mode extractive` would otherwise be taken as `--model
    extractive`; an unknown option is an error that names it."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="qa",
        description="Offline question answering over a folder of documents, with citations.",
        epilog="More: qa COMMAND --help. Settings can also come from QA_* environment variables.",
    )
    parser.add_argument("--version", action="version", version=f"qa {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
        p.set_defaults(func=func)
        return p

    def index_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--index", metavar="DIR", type=Path, help="index folder (default: index/, or QA_INDEX)"
        )
        p.add_argument(
            "--backend",
            choices=("auto", "torch", "onnx", "onnx-fp32"),
            help="embedder backend (default auto: the index's own, onnx for a new one; "
            "or QA_EMBED_BACKEND)",
        )

    p = command("index", "index files and folders (only new or changed files are embedded)", _index)
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        type=Path,
        help="files or folders (default: what this index was built from; for a new index, corpus/)",
    )
    index_option(p)
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="build the index again from scratch (the old one serves until the new is ready)",
    )
    p.add_argument("--add", action="store_true", help="only add: keep files that disappeared")
    p.add_argument(
        "--no-ocr",
        action="store_true",
        help="do not OCR scanned PDF pages and images (or QA_OCR=0)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--max-file-mb",
        type=float,
        metavar="MB",
        help="skip files larger than this (default 100, or QA_MAX_FILE_MB)",
    )
    p.add_argument(
        "--max-chunks-per-file",
        type=int,
        metavar="N",
        help="skip files that make more passages than this (default 10000, "
        "or QA_MAX_CHUNKS_PER_FILE)",
    )

    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="read, parse and embed on a Ray cluster (after the paths; ADDRESS: HOST:PORT, "
        "ray://HOST:PORT or auto; none: QA_RAY_ADDRESS, else a local Ray started for the run; "
        "needs pip install -e '.[ray]')",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="with --ray: embedding actors (default 3/4 of the cluster's CPUs, or QA_RAY_WORKERS)",
    )

    p = command("search", "find the passages that best match a query", _search)
    p.add_argument("query")
    p.add_argument("-k", type=int, metavar="N", help="number of passages (default 5)")
    index_option(p)
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    p.add_argument(
        "--source", action="append", metavar="SRC", help="only search this document (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = command("list", "list the indexed documents", _list)
    index_option(p)
    p.add_argument("--json", action="store_true")

    p = command("remove", "remove documents (or every document under a folder)", _remove)
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    index_option(p)

    from qa.cli import answer as cli_answer

    cli_answer.add_commands(command, index_option)

    p = command("serve", "start the browser chat and the /v1 API (http://127.0.0.1:7860)", _serve)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860)
    index_option(p)
    p.add_argument("--model", type=Path, metavar="PATH", help="GGUF model file")
    p.add_argument(
        "--auth", metavar="USER:PASSWORD", help="require a login (needed off 127.0.0.1; or QA_AUTH)"
    )
    p.add_argument(
        "--api-key",
        metavar="KEY",
        help="require `Authorization: Bearer KEY` on the /v1 API (needed off 127.0.0.1; "
        "or QA_API_KEY)",
    )
    p.add_argument(
        "--insecure", action="store_true", help="allow another address without a login or key"
    )
    p.add_argument("--open", action="store_true", help="open a browser tab")

    p = command("mcp", "serve the index to MCP clients over stdio (tools: search, ask)", _mcp)
    index_option(p)

    sub.add_parser("bench", help="speed: qa bench index|search|ask|all", add_help=False)
    sub.add_parser("eval", help="evaluation on datasets: qa eval --help", add_help=False)
    sub.add_parser(
        "train", help="reproduce the trained reader: qa train reader|eval", add_help=False
    )
    return parser


# --- commands -------------------------------------------------------------------------


def settings_from(args):
    from qa.config import Settings

    return Settings.load(
        index_dir=getattr(args, "index", None),
        k=getattr(args, "k", None),
        model=getattr(args, "model", None),
        max_file_mb=getattr(args, "max_file_mb", None),
        max_chunks_per_file=getattr(args, "max_chunks_per_file", None),
        embed_backend=getattr(args, "backend", None),
        ray_address=getattr(args, "ray", None) or None,
        ray_workers=getattr(args, "workers", None),
        ocr=False if getattr(args, "no_ocr", False) else None,
    )


def engine_from(args, create: bool = False):
    """The engine for the command's settings (its index opened on first use)."""
    from qa.engine import Engine

    return Engine(settings_from(args), create=create)


def _index(args) -> int:
    from qa.config import PROJECT_ROOT
    from qa.index.rebuild import stored_roots

    if args.workers is not None and args.ray is None:
        from qa.errors import BadInput

        raise BadInput("--workers is the number of Ray embedding actors: use it with --ray")
    engine = engine_from(args, create=True)
    settings = engine.settings
    paths = list(args.paths)
    if not paths and not stored_roots(settings.index_dir):
        # a new index with no PATH: the sample corpus
        paths = [Path("corpus") if Path("corpus").is_dir() else PROJECT_ROOT / "corpus"]
    progress = _Progress(enabled=not args.quiet and not args.json)
    try:  # --no-ocr is Settings(ocr=False): the engine turns OCR off for the run
        report = engine.index_files(
            paths,
            rebuild=args.rebuild,
            add_only=args.add,
            progress=progress,
            ray=getattr(args, "ray", None) is not None,
        )
    finally:
        progress.close()
    if args.json:
        print(json.dumps(_report_dict(report), indent=2))
    else:
        where = ", ".join(str(_relative(p)) for p in (paths or engine.roots()))
        print(f"Indexed {where} into {settings.index_dir}/: {report.summary()}")
        for s in report.skipped:
            print(f"  {'failed' if s.failed else 'skipped'} {_one_line(s.source)}: {s.reason}")
        for w in report.warnings:
            print(f"  warning {_one_line(w.source)}: {w.message}")
        print(f"{len(engine.documents())} documents, {engine.chunk_count()} chunks in the index.")
    return PARTIAL if any(s.failed for s in report.skipped) else 0


def _one_line(name: str) -> str:
    """A file name printable on one line: control characters and undecodable bytes escaped."""
    name = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in name)


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _report_dict(report) -> dict:
    return {
        "added": list(report.added),
        "updated": list(report.updated),
        "removed": list(report.removed),
        "unchanged": list(report.unchanged),
        "skipped": [
            {"source": s.source, "reason": s.reason, "failed": s.failed} for s in report.skipped
        ],
        "warnings": [{"source": w.source, "message": w.message} for w in report.warnings],
        "chunks_embedded": report.chunks_embedded,
        "seconds": round(report.seconds, 3),
    }


class _Progress:
    """tqdm bars for files read and chunks embedded (on stderr, only on a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bars: dict = {}

    def __call__(self, event: str, n: int, total: int | None) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if event not in self.bars:
            desc, unit = {
                "files": ("files", "file"),
                "embed": ("chunks", "chunk"),
                "ocr": ("OCR", "page"),
            }.get(event, (event, "it"))
            self.bars[event] = tqdm(
                total=total if event == "files" else 0,
                desc=f"{desc:>7}",
                unit=unit,
                position=len(self.bars),
                leave=True,
                dynamic_ncols=True,
            )
        bar = self.bars[event]
        if event == "embed":
            if n == 0:
                bar.total = (bar.total or 0) + (total or 0)
                bar.refresh()
            else:
                bar.update(total or 0)
        else:
            bar.update(n - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _search(args) -> int:
    hits = engine_from(args).search(args.query, args.k, sources=args.source, mode=args.mode)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("No matching passages.")
        return 0
    for rank, h in enumerate(hits, 1):
        where = f"{h.source}:{h.start}-{h.end}"
        if located := locator_label(h.locator, h.page):
            where += f" ({located})"
        if h.headings:
            where += " § " + " › ".join(h.headings)
        print(f"[{rank}] {where}  score {h.score:.4f}  via {'+'.join(h.retrievers)}")
        print(_indent(h.text))
        print()
    return 0


def _indent(text: str, width: int = 100) -> str:
    import textwrap

    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    return "\n".join(
        textwrap.fill(p, width, initial_indent="    ", subsequent_indent="    ") for p in paragraphs
    )


def _list(args) -> int:
    engine = engine_from(args)
    docs = engine.documents()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "source": d.source,
                        "title": d.title,
                        "chunks": d.chunks,
                        "size": d.size,
                        "sha256": d.sha256,
                    }
                    for d in docs
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return 0
    if not docs:
        print(f"The index in {engine.index_dir}/ is empty: run `qa index PATH`.")
        return 0
    width = max(len(d.source) for d in docs)
    for d in docs:
        print(f"{d.source:<{width}}  {d.chunks:>5} chunks  {d.size:>9,} bytes")
    print(f"{len(docs)} documents, {sum(d.chunks for d in docs)} chunks")
    return 0


def _remove(args) -> int:
    engine = engine_from(args)
    for source in args.sources:
        for removed in engine.remove(source):
            print(f"removed {removed}")
    return 0


def _serve(args) -> int:
    from qa.web import app as ui

    ui.serve(
        host=args.host,
        port=args.port,
        index_dir=args.index,
        model=args.model,
        auth=args.auth,
        insecure=args.insecure,
        open_browser=args.open,
        api_key=args.api_key,
    )
    return 0


def _mcp(args) -> int:
    from qa.api import mcp

    mcp.run(settings_from(args))
    return 0


def _bench(argv: list[str]) -> int:
    from qa.bench import cli

    return cli.main(argv)


def _train(argv: list[str]) -> int:
    from qa.train.__main__ import main as train

    return train(argv)


def _eval(argv: list[str]) -> int:
    from qa.eval import cli

    return cli.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
