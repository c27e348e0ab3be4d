"""`qa bench start`: cold start and peak memory of real `qa` processes, per embedder backend.

For each backend, on an index of the sample corpus built by `qa index` in a new process:
  - `qa index` itself: wall time and peak RSS;
  - `qa search` and `qa ask` in a fresh process each (wall time and CPU time, medians of
    repeats), `qa ask` with the trained reader on torch, with the reader through ONNX
    Runtime (QA_READER_BACKEND=onnx) and without the reader (QA_READER=off), and whether
    torch was imported (from `python -X importtime`);
  - `qa serve`: time from launch to the first answer of the chat's API
    (POST /v1/chat/completions, extractive), the second answer, and the server's peak RSS.
The reference in the same run is a bare `python -c pass` (the interpreter's own start).
CPU time (user + system) is given beside wall time: on a shared machine it is the figure
that does not depend on what else runs.
Peak RSS is the kernel's high-water mark of each process, read when it is reaped (wait4).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qa.bench.common import log
from qa.config import DEFAULT_EMBED_BACKEND, EMBED_BACKENDS, PROJECT_ROOT
from qa.errors import BadInput

START_TARGET = 2.0  # seconds of wall time for `qa search` / `qa ask` in a fresh process
QUESTION = "Did Ford deny the Xiaomi report?"
SERVE_TIMEOUT = 180.0


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class BackendStart:
    backend: str
    index_seconds: float
    index_peak_rss_mb: float
    seconds: dict[str, tuple[float, ...]]  # wall, per command (see COMMANDS)
    cpu_seconds: dict[str, tuple[float, ...]]
    torch_imported: dict[str, bool]
    serve_ready_seconds: float | None
    serve_first_answer_seconds: float | None
    serve_second_answer_seconds: float | None
    serve_peak_rss_mb: float | None

    def wall(self, command: str) -> float:
        return statistics.median(self.seconds[command])

    def cpu(self, command: str) -> float:
        return statistics.median(self.cpu_seconds[command])


@dataclass(frozen=True)
class StartResult:
    python_seconds: float  # bare interpreter start, the reference
    repeats: int
    backends: tuple[BackendStart, ...]
    target: float = START_TARGET
    kind: str = field(default="start", init=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        for b, run in zip(d["backends"], self.backends, strict=True):
            b["wall_medians"] = {c: run.wall(c) for c in run.seconds}
            b["cpu_medians"] = {c: run.cpu(c) for c in run.cpu_seconds}
        return d


def run_measured(cmd: list[str], env: dict, timeout: float = 600.0) -> Run:
    """Run `cmd` to its end: wall seconds and the process's own peak RSS (MiB)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        rusage, status = _reap(proc, timeout)
        seconds = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        return Run(
            seconds,
            rusage.ru_utime + rusage.ru_stime,
            rusage.ru_maxrss / 1024,
            os.waitstatus_to_exitcode(status),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def _reap(proc: subprocess.Popen, timeout: float):
    """wait4 the process (killing it after `timeout`); (rusage, status)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return rusage, status
        if time.monotonic() > deadline:
            proc.kill()
            deadline = float("inf")
        time.sleep(0.01)


def qa_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "qa.cli", *args]


def _env(**extra: str) -> dict:
    env = dict(os.environ)
    env.pop("QA_EMBED_BACKEND", None)
    env.update(extra)
    return env


def _torch_imported(cmd_args: list[str], env: dict) -> bool:
    run = run_measured([sys.executable, "-X", "importtime", "-m", "qa.cli", *cmd_args], env)
    if run.returncode != 0:
        raise BadInput(f"`qa {' '.join(cmd_args)}` failed: {run.stderr.strip()[-300:]}")
    # "import time: self | cumulative | <indent>module": torch at any depth of the tree
    return any(
        line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == "torch"
        for line in run.stderr.splitlines()
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict, timeout: float) -> dict:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def bench_serve(index_dir: Path, backend: str, log=log) -> tuple:
    """(ready s, first answer s, second answer s, peak RSS MiB) of a fresh `qa serve`."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = qa_cmd("serve", "--port", str(port), "--index", str(index_dir), "--backend", backend)
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=_env(), stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        try:
            ready = None
            while ready is None:
                if proc.poll() is not None or time.perf_counter() - t0 > SERVE_TIMEOUT:
                    out.seek(0)
                    tail = out.read().decode(errors="replace")[-300:]
                    raise BadInput(f"`qa serve` did not start: {tail}")
                try:
                    with urllib.request.urlopen(base + "/v1/models", timeout=2):
                        ready = time.perf_counter() - t0
                except OSError:
                    time.sleep(0.05)
            body = {"model": "extractive", "messages": [{"role": "user", "content": QUESTION}]}
            _post(base + "/v1/chat/completions", body, SERVE_TIMEOUT)
            first = time.perf_counter() - t0
            t1 = time.perf_counter()
            _post(base + "/v1/chat/completions", body, SERVE_TIMEOUT)
            second = time.perf_counter() - t1
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            rusage, _ = _reap(proc, 20.0)
    log(f"  {backend} serve: ready {ready:.1f}s, first answer {first:.1f}s, next {second:.2f}s")
    return ready, first, second, rusage.ru_maxrss / 1024


def bench_start(
    workdir: Path,
    *,
    backends: tuple[str, ...] = ("torch", "onnx"),
    repeats: int = 3,
    corpus: Path | None = None,
    serve: bool = True,
    log=log,
) -> StartResult:
    """Cold start and peak RSS of `qa index`, `qa search`, `qa ask` and `qa serve`."""
    unknown = [b for b in backends if b not in EMBED_BACKENDS]
    if unknown or not backends:
        raise BadInput(f"--backends takes some of {', '.join(EMBED_BACKENDS)}, not {unknown}")
    if repeats < 1:
        raise BadInput("--repeats must be at least 1")
    corpus = corpus or PROJECT_ROOT / "corpus"
    python = statistics.median(
        run_measured([sys.executable, "-c", "pass"], _env()).seconds for _ in range(repeats)
    )
    results = []
    for backend in backends:
        index_dir = Path(workdir) / f"start-{backend}" / "index"
        built = run_measured(
            qa_cmd("index", str(corpus), "--index", str(index_dir), "--rebuild", "-q")
            + ["--backend", backend],
            _env(),
        )
        if built.returncode != 0:
            raise BadInput(f"`qa index` failed: {built.stderr.strip()[-300:]}")
        log(f"  {backend} index: {built.seconds:.1f}s, peak RSS {built.peak_rss_mb:.0f} MiB")
        search = ["search", QUESTION, "--index", str(index_dir), "-k", "3"]
        ask = ["ask", QUESTION, "--index", str(index_dir)]
        commands = {
            "search": (search, _env()),
            "ask": (ask, _env(QA_READER_BACKEND="torch")),
            "ask-onnx-reader": (ask, _env(QA_READER_BACKEND="onnx")),
            "ask-noreader": (ask, _env(QA_READER="off")),
        }
        run_measured(qa_cmd(*ask), commands["ask-onnx-reader"][1])  # exports the reader once
        wall: dict[str, list[float]] = {c: [] for c in commands}
        cpu: dict[str, list[float]] = {c: [] for c in commands}
        for _ in range(repeats):
            for what, (args, env) in commands.items():
                run = run_measured(qa_cmd(*args), env)
                if run.returncode != 0:
                    raise BadInput(f"`qa {what}` failed: {run.stderr.strip()[-300:]}")
                wall[what].append(run.seconds)
                cpu[what].append(run.cpu_seconds)
        log(
            f"  {backend}: "
            + ", ".join(f"{c} {statistics.median(wall[c]):.2f}s wall" for c in commands)
        )
        served = bench_serve(index_dir, backend, log) if serve else (None,) * 4
        results.append(
            BackendStart(
                backend,
                built.seconds,
                built.peak_rss_mb,
                {c: tuple(v) for c, v in wall.items()},
                {c: tuple(v) for c, v in cpu.items()},
                {c: _torch_imported(args, env) for c, (args, env) in commands.items()},
                *served,
            )
        )
    return StartResult(python, repeats, tuple(results))


def format_start(r: StartResult) -> str:
    def s(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f}"

    def mb(x: float | None) -> str:
        return "—" if x is None else f"{x:.0f}"

    width = 14
    lines = [
        f"Cold start, wall seconds of a fresh process on the sample corpus (median of "
        f"{r.repeats}); bare `python -c pass`: {r.python_seconds:.2f}s; target <= {r.target}s",
        f"  {'':46}"
        + "".join(
            f"{b.backend + (' *' if b.backend == DEFAULT_EMBED_BACKEND else ''):>{width}}"
            for b in r.backends
        ),
    ]

    def row(label: str, get) -> None:
        lines.append(f"  {label:46}" + "".join(f"{get(b):>{width}}" for b in r.backends))

    labels = {
        "search": "qa search",
        "ask": "qa ask (extractive, reader on torch)",
        "ask-onnx-reader": "qa ask (extractive, reader on ONNX)",
        "ask-noreader": "qa ask (extractive, QA_READER=off)",
    }
    for c, label in labels.items():
        row(f"{label}, wall", lambda b, c=c: s(b.wall(c)))
        row(f"{label}, CPU", lambda b, c=c: s(b.cpu(c)))
        row("  torch imported", lambda b, c=c: "yes" if b.torch_imported[c] else "no")
    row("qa serve: API ready", lambda b: s(b.serve_ready_seconds))
    row("qa serve: first chat answer (from launch)", lambda b: s(b.serve_first_answer_seconds))
    row("qa serve: second answer", lambda b: s(b.serve_second_answer_seconds))
    row("qa index (sample corpus), seconds", lambda b: s(b.index_seconds))
    row("peak RSS MiB: qa index", lambda b: mb(b.index_peak_rss_mb))
    row("peak RSS MiB: qa serve (after 2 answers)", lambda b: mb(b.serve_peak_rss_mb))
    lines.append("  * the default backend")
    return "\n".join(lines)
