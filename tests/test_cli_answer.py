"""`qa ask`, `qa chat`, `qa doctor` as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import CORPUS, FORD_QUESTION

from qa.config import PROJECT_ROOT, default_model_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-answer")
    shutil.copytree(CORPUS, root / "corpus")
    done = qa("index", "corpus", cwd=root)
    assert done.returncode == 0, done.stderr
    return root


def qa(*argv, cwd, stdin=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "qa.cli", *map(str, argv)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "QA_INDEX": str(cwd / "index"), **(env or {})},
    )


MODEL = ["--model", PROJECT_ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"]


def check_citations(result: dict, root) -> None:
    assert result["citations"], result
    for c in result["citations"]:
        text = (root / c["source"]).read_text(encoding="utf-8")
        assert text[c["start"] : c["end"]] == c["quote"]
        assert f"[{c['n']}]" in result["answer"]


@pytest.mark.parametrize("mode", [["--no-llm"], MODEL])
def test_ask_json_has_exact_offsets(workdir, mode):
    done = qa("ask", FORD_QUESTION, "--json", *mode, cwd=workdir)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"answer", "refused", "citations", "timings"} <= set(result)
    assert result["refused"] is False
    check_citations(result, workdir)
    assert any("completely false" in c["quote"] for c in result["citations"])
    assert set(result["citations"][0]) == {
        "n",
        "source",
        "start",
        "end",
        "page",
        "locator",
        "quote",
    }
    assert result["citations"][0]["locator"] is None  # a .txt file: no page, slide or row


def test_ask_streams_then_lists_sources(workdir):
    done = qa("ask", FORD_QUESTION, *MODEL, cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "Sources:\n[1] corpus/ford-xiaomi-joint-venture.txt:" in done.stdout
    assert "completely false" in done.stdout.split("Sources:")[1]


def test_ask_refuses_what_the_documents_do_not_say(workdir):
    for mode in (["--no-llm"], MODEL):
        done = qa("ask", "Who is the CEO of Apple?", "--json", *mode, cwd=workdir)
        result = json.loads(done.stdout)
        assert result["refused"] is True and result["citations"] == []
        assert "don't say" in result["answer"]


def test_missing_model_is_one_clear_line(workdir):
    done = qa("ask", FORD_QUESTION, "--model", workdir / "nope.gguf", cwd=workdir)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert "make model" in done.stderr and "--no-llm" in done.stderr
    broken = workdir / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(100))
    done = qa("ask", FORD_QUESTION, "--model", broken, cwd=workdir)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr


def test_chat_keeps_context_for_follow_ups(workdir):
    script = f"{FORD_QUESTION}\nAnd did Xiaomi deny it too?\n/exit\n"
    done = qa("chat", "--no-llm", cwd=workdir, stdin=script)
    assert done.returncode == 0, done.stderr
    turns = done.stdout.split("› ")[1:]
    assert len(turns) == 3
    assert "completely false" in turns[0]
    assert "follow-up searched as:" in turns[1] and "Xiaomi" in turns[1]
    assert "Sources:" in turns[1]


def test_doctor_reports_state_and_what_to_fix(workdir, tmp_path):
    done = qa("doctor", cwd=workdir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All good." in done.stdout and "1 documents" in done.stdout
    assert str(default_model_path().name) in done.stdout
    done = qa(
        "doctor", "--model", tmp_path / "missing.gguf", "--index", tmp_path / "none", cwd=workdir
    )
    assert done.returncode == 1
    assert "make model" in done.stdout and "qa index PATH" in done.stdout


@pytest.mark.slow
def test_doctor_warns_of_a_missing_model_only_when_answers_are_extractive(workdir, tmp_path):
    missing = {"QA_MODEL": str(tmp_path / "gone.gguf")}
    done = qa("doctor", cwd=workdir, env=missing)  # default mode: extractive
    assert done.returncode == 0, done.stdout
    assert "warn" in done.stdout and "needed only for --llm" in done.stdout
    done = qa("doctor", cwd=workdir, env={**missing, "QA_MODE": "llm"})
    assert done.returncode == 1 and "FAIL" in done.stdout and "make model" in done.stdout


def test_doctor_says_fail_alone_for_a_damaged_default_model(workdir, tmp_path):
    """Regression: a model with the wrong sha256 showed FAIL and then "ok … loads"."""
    damaged = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"  # the default's name, other bytes
    data = bytearray((PROJECT_ROOT / "models" / damaged.name).read_bytes())
    data[-1000:] = bytes(1000)
    damaged.write_bytes(bytes(data))
    done = qa("doctor", "--model", damaged, cwd=workdir)
    assert done.returncode == 1
    (line,) = [ln for ln in done.stdout.splitlines() if str(damaged) in ln]
    assert line.strip().startswith("FAIL") and "sha256" in line
