"""The CLI: commands, JSON output, exit codes, one-line errors (no tracebacks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, FORD_QUESTION
from fakes import FakeEmbedder

from qa import cli


@pytest.fixture
def fake_models(monkeypatch):
    emb = FakeEmbedder()
    monkeypatch.setattr("qa.index.core.get_embedder", lambda *a, **k: emb)
    return emb


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_index_search_list_remove(capsys, tmp_path, docs, fake_models, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "index", "docs")
    assert code == 0, err
    assert "3 added" in out and "3 documents" in out
    code, out, _ = run(capsys, "index")  # no PATH: what the index was built from
    assert code == 0 and "3 unchanged" in out and "0 chunks embedded" in out

    code, out, _ = run(capsys, "search", "longest river in Africa", "-k", "2", "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 2
    assert {"source", "start", "end", "page", "text", "score"} <= set(hits[0])
    text = (tmp_path / hits[0]["source"]).read_text()
    assert text[hits[0]["start"] : hits[0]["end"]] == hits[0]["text"]

    code, out, _ = run(capsys, "search", "Etna", "--source", "docs/cats.txt")
    assert code == 0 and "docs/cats.txt" in out and "volcano" not in out

    code, out, _ = run(capsys, "list", "--json")
    assert [d["source"] for d in json.loads(out)] == [
        "docs/cats.txt",
        "docs/rivers.md",
        "docs/sub/volcano.txt",
    ]
    code, out, _ = run(capsys, "remove", "docs/sub")
    assert code == 0 and "removed docs/sub/volcano.txt" in out
    code, out, _ = run(capsys, "list")
    assert "volcano" not in out and "2 documents" in out


def test_index_report_json_and_partial_exit_code(capsys, tmp_path, docs, fake_models):
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    (docs / "archive.7z").write_bytes(b"7z\xbc\xaf\x27\x1c")
    code, out, _ = run(capsys, "index", docs, "--index", tmp_path / "ix", "--json")
    report = json.loads(out)
    assert code == cli.PARTIAL  # a document could not be read
    failed = {s["source"]: s["failed"] for s in report["skipped"]}
    assert failed == {"docs/broken.pdf": True, "docs/archive.7z": False}
    (docs / "broken.pdf").unlink()
    code, out, _ = run(capsys, "index", docs, "--index", tmp_path / "ix")
    assert code == 0  # an unsupported file type alone is not a failure
    assert "skipped" in out and "archive.7z" in out


def test_rebuild_and_add_only(capsys, tmp_path, docs, fake_models):
    ix = tmp_path / "ix"
    assert run(capsys, "index", docs, "--index", ix)[0] == 0
    (docs / "cats.txt").unlink()
    code, out, _ = run(capsys, "index", docs, "--index", ix, "--add")
    assert code == 0 and "0 removed" in out and "3 documents" in out
    code, out, _ = run(capsys, "index", docs, "--index", ix, "--rebuild")
    assert code == 0 and "2 added" in out and "2 documents" in out


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["search", "x", "--index", "{tmp}/none"], 1, "no index in"),
        (["index", "{tmp}/missing"], 2, "no such file or folder"),
        (["search", "   ", "--index", "{tmp}/ix"], 2, "query is empty"),
        (["search", "x", "-k", "0", "--index", "{tmp}/ix"], 2, "k must be between 1 and 50, got 0"),
        (["remove", "nothing.txt", "--index", "{tmp}/ix"], 2, "not in the index"),
    ],
)
def test_errors_are_one_line(capsys, tmp_path, docs, fake_models, argv, code, message):
    run(capsys, "index", docs, "--index", tmp_path / "ix")
    got, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert got == code
    assert err.startswith("qa: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_environment_value_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setenv("QA_K", "many")
    code, _, err = run(capsys, "search", "x")
    assert code == 2 and "QA_K='many' is not a valid whole number" in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["search"])
    assert exc.value.code == 2
    assert cli.main([]) == 2


def qa(*argv, cwd: Path, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qa.cli", *map(str, argv)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.mark.slow
def test_real_cli_index_and_search_the_sample_corpus(tmp_path):
    """As a user runs it: `qa index corpus && qa search "Did Ford deny the Xiaomi report?"`."""
    import shutil

    shutil.copytree(CORPUS, tmp_path / "corpus")
    env = {"QA_INDEX": str(tmp_path / "index")}
    done = qa("index", "corpus", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "1 added" in done.stdout
    assert "Loading weights" not in done.stderr  # no noise from the model loader
    done = qa("search", FORD_QUESTION, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    first = done.stdout.split("\n[2]")[0]
    assert first.startswith("[1] corpus/ford-xiaomi-joint-venture.txt:")
    assert "completely false" in first
    done = qa("index", "--index", tmp_path / "index", "corpus", cwd=tmp_path)
    assert "1 unchanged" in done.stdout and "0 chunks embedded" in done.stdout
    bad = qa("search", FORD_QUESTION, "--index", tmp_path / "nowhere", cwd=tmp_path)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert (
        bad.stderr.strip()
        == f"qa: error: no index in {tmp_path / 'nowhere'}/: run `qa index PATH` first"
    )
