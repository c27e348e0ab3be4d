"""Concurrency: 8 threads searching and asking through one `Index` get exactly the
single-threaded results; 20 Gradio clients at once against the running app get no errors
and keep their own histories; indexing in another process (`qa index --add`) while the app
answers blocks neither and corrupts nothing. Latencies (p95) are printed, not asserted."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, FORD_QUESTION
from fakes import FakeEmbedder
from test_index import consistent

import qa
from qa import Index, Settings
from qa.config import PROJECT_ROOT

QA = PROJECT_ROOT / ".venv" / "bin" / "qa"
MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTIONS = [
    FORD_QUESTION,
    "Who is the CEO of Ford?",
    "Which newspaper first reported that Ford would help Xiaomi?",
    "Who did Jim Farley meet in the Trump Administration?",
    "What does China require from outside carmakers?",
]


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else 0.0


def report(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n[concurrency] {text}", flush=True)


# --- one Index, many threads --------------------------------------------------------------


def hits_of(index: Index, q: str) -> list[tuple[int, str, int, int, float]]:
    return [(h.chunk_id, h.source, h.start, h.end, round(h.score, 5)) for h in index.search(q)]


def answer_of(index: Index, q: str, mode: str) -> tuple:
    a = qa.ask(q, index=index, mode=mode)
    return a.text, a.refused, tuple((c.n, c.source, c.start, c.end) for c in a.citations)


@pytest.mark.slow
def test_eight_threads_search_and_ask_through_one_index(corpus_index, capsys):
    index = corpus_index
    expected = {}
    for q in QUESTIONS:
        expected["search", q] = hits_of(index, q)
        expected["extractive", q] = answer_of(index, q, "extractive")
        expected["llm", q] = answer_of(index, q, "llm")
    assert expected["llm", FORD_QUESTION][2], "the Ford answer is cited"

    # each thread: every question searched and answered extractively, two by the model
    jobs = []
    for t in range(8):
        order = QUESTIONS[t % 5 :] + QUESTIONS[: t % 5]
        ops = [(kind, q) for q in order for kind in ("search", "extractive")]
        ops += [("llm", order[0]), ("llm", order[1])]
        jobs.append(ops)
    latencies: dict[str, list[float]] = {"search": [], "extractive": [], "llm": []}
    mismatches: list[tuple] = []
    start = threading.Barrier(8)

    def work(ops):
        start.wait()
        for kind, q in ops:
            t0 = time.perf_counter()
            got = hits_of(index, q) if kind == "search" else answer_of(index, q, kind)
            latencies[kind].append(time.perf_counter() - t0)
            if got != expected[kind, q]:
                mismatches.append((kind, q, got, expected[kind, q]))

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(work, ops) for ops in jobs]:
            future.result(timeout=900)  # re-raises any error from the thread
    assert not mismatches, mismatches[:2]
    assert sum(len(v) for v in latencies.values()) == 8 * 12
    report(
        capsys,
        "8 threads, one Index: p95 search {:.3f} s, extractive ask {:.3f} s, model ask {:.2f} s"
        " ({} / {} / {} calls)".format(
            p95(latencies["search"]),
            p95(latencies["extractive"]),
            p95(latencies["llm"]),
            *(len(latencies[k]) for k in ("search", "extractive", "llm")),
        ),
    )


def test_searches_go_on_while_the_same_index_is_written(tmp_path, docs):
    """A thread indexing (add, change, remove) and nine searching one Index object: no
    errors, and every hit is a whole version of its passage. (That a search is not held up
    by a write's embedding is shown without relying on scheduling in
    test_index_lifecycle.py::test_a_search_completes_while_a_write_is_embedding.)"""
    settings = Settings.load(index_dir=tmp_path / "index", chunk_tokens=48, chunk_overlap=8)
    index = Index.build([docs], settings=settings, embedder=FakeEmbedder(delay=0.002))
    more = tmp_path / "more"
    more.mkdir()
    stop = threading.Event()
    errors: list[BaseException] = []

    written: dict[str, set[str]] = {}  # source -> every version written (one chunk each)

    def writer():
        try:
            for round_ in range(4):
                for i in range(60):
                    text = (
                        f"Harbour {i} round {round_}. Cranes lift containers at dawn. "
                        f"Ships from port {i} arrive weekly."
                    )
                    written.setdefault(f"more/m{i:03d}.txt", set()).add(text)
                    (more / f"m{i:03d}.txt").write_text(text, "utf-8")
                index.sync([more])
            index.remove(more)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            stop.set()

    def reader(q):
        try:
            while not stop.is_set():
                for mode in ("hybrid", "dense", "bm25"):
                    hits = index.search(q, k=5, mode=mode)
                    for h in hits:
                        if h.source in written:  # a file being rewritten: a whole version
                            assert h.text in written[h.source]
                        else:
                            text = index.document_text(h.source)
                            assert text[h.start : h.end] == h.text
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=reader, args=(q,)) for q in ["cranes", "Nile", "ships"] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[0]
    consistent(index)
    assert [d.source for d in index.documents()] == [
        "docs/cats.txt",
        "docs/rivers.md",
        "docs/sub/volcano.txt",
    ]
    index.close()


# --- the app: many clients, and indexing while it answers -------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """The real app (real embedder, real default model) on a free loopback port."""
    from qa.web.app import serve

    root = tmp_path_factory.mktemp("concurrency-app")
    shutil.copytree(CORPUS, root / "corpus")
    settings = Settings.load(index_dir=root / "index")
    Index.build([root / "corpus"], root / "index", settings=settings).close()
    port = free_port()
    app = serve(port=port, settings=settings, block=False, warm=True, quiet=True)
    yield app, f"http://127.0.0.1:{port}/", root
    app.close()
    app.qa.engine.close()


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def ask(c, question: str, mode: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    job = c.submit(question, 5, mode, MODEL, 0.0, api_name="/ask")
    chat = job.result(timeout=600)[1]
    return chat, time.perf_counter() - t0


@pytest.mark.slow
def test_twenty_clients_at_once_keep_their_own_histories(app_server, capsys):
    _, url, _ = app_server
    n = 20
    latencies: list[float] = []
    model_latencies: list[float] = []
    start = threading.Barrier(n)

    def session(i: int) -> str:
        c = client(url)
        mode = "Model" if i % 5 == 0 else "Extractive"  # 4 sessions use the model
        start.wait(timeout=300)
        chat, seconds = ask(c, f"{QUESTIONS[i % 5]} (ref zq{i:02d}a)", mode)
        (model_latencies if mode == "Model" else latencies).append(seconds)
        chat, seconds = ask(c, f"And what about Xiaomi? (ref zq{i:02d}b)", "Extractive")
        latencies.append(seconds)
        return chat

    t0 = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        chats = [f.result(timeout=900) for f in [pool.submit(session, i) for i in range(n)]]
    elapsed = time.perf_counter() - t0
    for i, chat in enumerate(chats):
        assert 'data-status="error"' not in chat and 'data-status="streaming"' not in chat
        assert chat.count('class="qa-turn"') == 2, chat
        refs = re.findall(r"zq(\d\d)([ab])", chat)
        assert sorted(set(refs)) == [(f"{i:02d}", "a"), (f"{i:02d}", "b")], (i, refs)
        assert chat.index(f"zq{i:02d}a") < chat.index(f"zq{i:02d}b")
        assert chat.count('data-status="answered"') + chat.count('data-status="refused"') == 2
    report(
        capsys,
        f"20 clients x 2 questions in {elapsed:.1f} s: p95 extractive {p95(latencies):.2f} s "
        f"({len(latencies)} requests), p95 model {p95(model_latencies):.2f} s "
        f"({len(model_latencies)} requests), end to end over HTTP",
    )


def lock_held(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock this process took
    return False


@pytest.mark.slow
def test_indexing_in_another_process_while_the_app_answers(app_server, capsys):
    _, url, root = app_server
    more = root / "more"
    more.mkdir()
    for i in range(600):
        (more / f"harbour{i:03d}.txt").write_text(
            f"Harbour log {i}. The crane operator on pier {i} moved {i * 3} containers. "
            f"Tugboat {i} assisted ships entering the harbour at dawn.",
            "utf-8",
        )
    (more / "festival.txt").write_text(
        "Quentin Harbor hosts the Zorblat lantern festival every March. The Zorblat lantern "
        "festival was founded in 1887 by a sailor named Ada Pellworth.",
        "utf-8",
    )
    c = client(url)
    before, _ = ask(c, "Who founded the Zorblat lantern festival?", "Extractive")
    assert "Ada Pellworth" not in before
    env = {**os.environ, "QA_INDEX": str(root / "index")}
    writer = subprocess.Popen(
        [str(QA), "index", "--add", "--quiet", str(more)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answered_while_writing = []
    try:
        deadline = time.monotonic() + 120
        while not lock_held(root / "index" / ".lock") and writer.poll() is None:
            assert time.monotonic() < deadline, "the writer never took the lock"
            time.sleep(0.05)
        i = 0
        while writer.poll() is None:
            chat, seconds = ask(client(url), QUESTIONS[i % 5], "Extractive")
            assert 'data-status="error"' not in chat, chat
            assert 'data-status="answered"' in chat or 'data-status="refused"' in chat
            if writer.poll() is None:
                answered_while_writing.append(seconds)
            i += 1
        out, err = writer.communicate(timeout=600)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0, err
    assert "601 added" in out and "Traceback" not in err
    assert len(answered_while_writing) >= 2, "answers kept coming while the index was written"
    # the new document is searchable through the running app
    after, _ = ask(c, "Who founded the Zorblat lantern festival?", "Extractive")
    assert "Ada Pellworth" in after and "more/festival.txt" not in before
    with Index.open(root / "index") as index:
        consistent(index)
        assert len(index.documents()) == 602
    report(
        capsys,
        f"{len(answered_while_writing)} answers while `qa index --add` wrote 601 files: "
        f"p95 {p95(answered_while_writing):.2f} s",
    )
