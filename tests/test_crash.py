"""Crash safety: indexing killed with SIGKILL leaves the last committed, consistent index,
holding the old or the new version of each file, and the next run completes the work."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fakes import FakeEmbedder
from test_index import consistent

from qa import Index

TESTS = Path(__file__).parent

WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from fakes import FakeEmbedder
    from qa import Index, Settings
    settings = Settings.load(index_dir={index!r}, chunk_tokens=48, chunk_overlap=8)
    index = Index.open(settings.index_dir, settings=settings,
                       embedder=FakeEmbedder(delay=0.004), create=True)
    print("started", flush=True)
    index.sync([{docs!r}])
    print("finished", flush=True)
    """
)


def write_docs(folder: Path, n: int, version: str) -> dict[str, str]:
    folder.mkdir(exist_ok=True)
    hashes = {}
    for i in range(n):
        text = " ".join(
            f"Document {i} version {version} sentence {j} mentions topic{(i * 7 + j) % 50}."
            for j in range(12)
        )
        path = folder / f"doc{i:04d}.txt"
        path.write_text(text, "utf-8")
        hashes[f"docs/{path.name}"] = hashlib.sha256(text.encode()).hexdigest()
    return hashes


def run_writer(tmp_path: Path, kill_after: float | None) -> str:
    script = WRITER.format(
        tests=str(TESTS), index=str(tmp_path / "index"), docs=str(tmp_path / "docs")
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if kill_after is None:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        return out
    assert proc.stdout.readline().strip() == "started"
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    return out


def reopen(tmp_path: Path) -> Index:
    settings_index = tmp_path / "index"
    return Index.open(settings_index, embedder=FakeEmbedder())


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [0.05, 0.4, 0.9, 1.6, 2.5])
def test_killed_first_build_leaves_a_consistent_index(tmp_path, kill_after):
    v1 = write_docs(tmp_path / "docs", 250, "one")
    out = run_writer(tmp_path, kill_after)
    if os.path.exists(tmp_path / "index" / "manifest.json"):
        index = reopen(tmp_path)
        consistent(index)
        for doc in index.documents():
            assert v1[doc.source] == doc.sha256  # a document is all there or not at all
        index.close()
    run_writer(tmp_path, None)  # the next run completes the work
    index = reopen(tmp_path)
    consistent(index)
    assert {d.source: d.sha256 for d in index.documents()} == v1
    if kill_after <= 1.0:
        assert "finished" not in out  # the kill really interrupted the run


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [0.3, 1.0, 1.8])
def test_killed_update_keeps_old_or_new_version_of_each_file(tmp_path, kill_after):
    v1 = write_docs(tmp_path / "docs", 120, "one")
    run_writer(tmp_path, None)
    v2 = write_docs(tmp_path / "docs", 120, "two")
    run_writer(tmp_path, kill_after)
    index = reopen(tmp_path)
    consistent(index)
    states = {d.source: d.sha256 for d in index.documents()}
    assert set(states) == set(v1)
    assert all(sha in (v1[s], v2[s]) for s, sha in states.items())
    for hit in index.search("version", k=20, mode="bm25"):
        version = "one" if states[hit.source] == v1[hit.source] else "two"
        assert f"version {version}" in hit.text  # chunks match the stored version
    index.close()
    run_writer(tmp_path, None)
    index = reopen(tmp_path)
    consistent(index)
    assert {d.source: d.sha256 for d in index.documents()} == v2
