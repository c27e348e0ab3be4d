"""Crash safety: indexing killed with SIGKILL at 20 distinct moments (inside SQLite
transactions, between them, while embedding, while the FAISS file is written) leaves an
index that opens, is consistent (every SQLite chunk id has its vector and vice versa), holds
the old or the new version of each file, never a mix, and that the next run completes.
A damaged or missing index file gives a clear error naming the rebuild command, or is
rebuilt from the database (the FAISS file is derived data), never silently wrong results."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEmbedder
from test_index import consistent

from qa import Index, Settings
from qa.config import PROJECT_ROOT
from qa.errors import IndexCorrupt

TESTS = Path(__file__).parent
QA = PROJECT_ROOT / ".venv" / "bin" / "qa"

# A writer that stops at a chosen moment (the n-th time a point is passed) and waits there
# to be killed, so each trial kills at a known, distinct place. Points: "embed" (vectors
# made, nothing written), "delete"/"insert" (inside a transaction, after that row change),
# "before-commit" (all rows of a transaction written, not committed), "committed",
# "faiss-written" (the FAISS temp file written, not yet renamed into place), "saved".
# A point of "time" kills after a delay instead, wherever the writer is.
WRITER = textwrap.dedent(
    """
    import sys, time
    from contextlib import contextmanager
    sys.path.insert(0, {tests!r})
    import faiss
    import qa.index.store, qa.index.vectors
    from fakes import FakeEmbedder
    from qa import Index, Settings

    STOP, AT = {point!r}, {occurrence!r}
    seen = {{}}

    def point(name):
        seen[name] = seen.get(name, 0) + 1
        if name == STOP and seen[name] == AT:
            print("paused at", name, AT, flush=True)
            time.sleep(120)  # killed here

    Store = qa.index.store.Store
    _insert, _delete, _transaction = Store.insert_document, Store.delete_document, Store.transaction

    def insert_document(self, conn, **kw):
        ids = _insert(self, conn, **kw)
        point("insert")
        return ids

    def delete_document(self, conn, source):
        ids = _delete(self, conn, source)
        point("delete")
        return ids

    @contextmanager
    def transaction(self):
        with _transaction(self) as conn:
            yield conn
            point("before-commit")
        point("committed")

    Store.insert_document, Store.delete_document = insert_document, delete_document
    Store.transaction = transaction
    _write_index = faiss.write_index

    def write_index(index, path):
        _write_index(index, path)
        point("faiss-written")

    faiss.write_index = write_index
    _save = qa.index.vectors.VectorIndex.save

    def save(self, path):
        _save(self, path)
        point("saved")

    qa.index.vectors.VectorIndex.save = save

    class Embedder(FakeEmbedder):
        def embed(self, texts):
            out = super().embed(texts)
            point("embed")
            return out

    settings = Settings.load(index_dir={index!r}, chunk_tokens=48, chunk_overlap=8)
    index = Index.open(settings.index_dir, settings=settings,
                       embedder=Embedder(delay={delay!r}), create=True)
    print("started", flush=True)
    index.sync([{docs!r}])
    print("finished", flush=True)
    """
)


def write_docs(folder: Path, numbers: range, version: str) -> dict[str, str]:
    """Documents `numbers` at `version` (other files removed); source -> sha256."""
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.txt"):
        old.unlink()
    hashes = {}
    for i in numbers:
        text = " ".join(
            f"Document {i} version {version} sentence {j} mentions topic{(i * 7 + j) % 50}."
            for j in range(12)
        )
        path = folder / f"doc{i:04d}.txt"
        path.write_text(text, "utf-8")
        hashes[f"docs/{path.name}"] = hashlib.sha256(text.encode()).hexdigest()
    return hashes


def settings_for(tmp_path: Path) -> Settings:
    return Settings.load(index_dir=tmp_path / "index", chunk_tokens=48, chunk_overlap=8)


def kill_writer(tmp_path: Path, point: str, occurrence: float) -> str:
    """Run the writer and SIGKILL it at `point` (or `occurrence` seconds after it started)."""
    timed = point == "time"
    script = WRITER.format(
        tests=str(TESTS),
        index=str(tmp_path / "index"),
        docs=str(tmp_path / "docs"),
        point=point,
        occurrence=occurrence,
        delay=0.003 if timed else 0.0,
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "started", proc.stderr.read()
        if timed:
            time.sleep(occurrence)
        else:
            line = proc.stdout.readline().strip()
            assert line == f"paused at {point} {occurrence}", (line, proc.stderr.read())
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return out


def check_states(index: Index, allowed: dict[str, set[str]], required: set[str]) -> dict:
    """Every document is whole, at one of its allowed versions; chunks match that version."""
    consistent(index)
    states = {d.source: d.sha256 for d in index.documents()}
    assert required <= set(states) <= set(allowed)
    for source, sha in states.items():
        assert sha in allowed[source], source
        version = index.document_text(source).split()[3]  # "Document N version V ..."
        chunks = index.store.conn.execute(
            "SELECT c.text FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.source = ?",
            (source,),
        ).fetchall()
        assert chunks and all(f"version {version}" in text for (text,) in chunks)
    return states


def rerun(tmp_path: Path, expected: dict[str, str]) -> None:
    """The next run completes the work: exactly the expected documents, consistent."""
    settings = settings_for(tmp_path)
    index = Index.open(settings.index_dir, settings=settings, embedder=FakeEmbedder(), create=True)
    index.sync([tmp_path / "docs"])
    index.close()
    index = Index.open(settings.index_dir, settings=settings, embedder=FakeEmbedder())
    consistent(index)
    assert {d.source: d.sha256 for d in index.documents()} == expected
    assert index.search("version sentence", k=3)
    index.close()


# 150 documents of ~3 passages each: two embedding groups, so two document transactions,
# then the FAISS file, then the transaction recording the indexed folders.
FIRST_BUILD = [
    ("embed", 1),
    ("insert", 1),
    ("insert", 60),
    ("before-commit", 1),
    ("committed", 1),
    ("embed", 2),
    ("insert", 120),
    ("before-commit", 2),
    ("faiss-written", 1),
    ("saved", 1),
    ("before-commit", 3),
    ("time", 0.6),
]


@pytest.mark.slow
@pytest.mark.parametrize(("point", "occurrence"), FIRST_BUILD)
def test_killed_first_build_leaves_a_consistent_index(tmp_path, point, occurrence):
    v1 = write_docs(tmp_path / "docs", range(150), "one")
    out = kill_writer(tmp_path, point, occurrence)
    if point != "time":
        assert "finished" not in out
    if (tmp_path / "index" / "manifest.json").exists():
        index = Index.open(tmp_path / "index", embedder=FakeEmbedder())
        states = check_states(index, {s: {sha} for s, sha in v1.items()}, set())
        index.close()
        if point in ("committed", "faiss-written", "saved"):
            assert states, "a committed group survives the kill"
    rerun(tmp_path, v1)


# Update: 140 documents change, 10 disappear, 10 are new. Deletes 1-150 happen in the two
# document transactions; deletes 151-160 in the one removing the files that disappeared.
UPDATE = [
    ("delete", 1),
    ("insert", 70),
    ("before-commit", 1),
    ("committed", 1),
    ("embed", 2),
    ("delete", 155),
    ("faiss-written", 1),
    ("time", 0.8),
]


@pytest.mark.slow
@pytest.mark.parametrize(("point", "occurrence"), UPDATE)
def test_killed_update_keeps_old_or_new_version_of_each_file(tmp_path, point, occurrence):
    v1 = write_docs(tmp_path / "docs", range(150), "one")
    settings = settings_for(tmp_path)
    Index.build([tmp_path / "docs"], settings=settings, embedder=FakeEmbedder()).close()
    v2 = write_docs(tmp_path / "docs", range(10, 160), "two")
    out = kill_writer(tmp_path, point, occurrence)
    if point != "time":
        assert "finished" not in out
    index = Index.open(settings.index_dir, settings=settings, embedder=FakeEmbedder())
    allowed = {s: {v1.get(s), v2.get(s)} - {None} for s in {*v1, *v2}}
    kept = set(v1) & set(v2)  # replaced in one transaction each: never missing
    states = check_states(index, allowed, kept)
    index.close()
    if point == "delete" and occurrence > 150:  # killed while removing vanished files
        assert all(states[s] == v2[s] for s in kept)
    rerun(tmp_path, v2)


def test_twenty_distinct_kill_moments():
    moments = [("build", *m) for m in FIRST_BUILD] + [("update", *m) for m in UPDATE]
    assert len(set(moments)) == len(moments) == 20


# --- damaged or missing index files ------------------------------------------------------


@pytest.fixture
def built(tmp_path, docs, fake_embedder):
    settings = Settings.load(index_dir=tmp_path / "index", chunk_tokens=48, chunk_overlap=8)
    index = Index.build([docs], settings=settings, embedder=fake_embedder)
    expected = [(h.chunk_id, h.source) for h in index.search("Danube countries", k=3)]
    index.close()
    return settings, expected


def reopen(settings) -> Index:
    return Index.open(settings.index_dir, settings=settings, embedder=FakeEmbedder())


def faiss_file(settings) -> Path:
    (path,) = settings.index_dir.glob("vectors-*.faiss")
    return path


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "empty", "other-ids", "other-dimension"],
)
def test_a_damaged_faiss_file_is_rebuilt_from_the_database(built, damage):
    import faiss

    settings, expected = built
    path = faiss_file(settings)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a valid FAISS file that does not match the database
        dim = 64 if damage == "other-ids" else 32
        other = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        count = reopen(settings).store.count_chunks()
        other.add_with_ids(
            np.random.default_rng(0).random((count, dim), dtype=np.float32),
            np.arange(1000, 1000 + count, dtype=np.int64),
        )
        faiss.write_index(other, str(path))
    index = reopen(settings)
    assert [(h.chunk_id, h.source) for h in index.search("Danube countries", k=3)] == expected
    consistent(index)
    index.close()
    # the repaired file was written back: the next open loads it as it is
    index = reopen(settings)
    assert index._load_vectors(faiss_file(settings), "Flat") is not None
    index.close()


def _corrupt_pages(path: Path) -> None:
    """Overwrite everything after the first page (the schema survives, the tables do not)."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    assert len(data) > 2 * page
    data[page:] = os.urandom(len(data) - page)
    path.write_bytes(bytes(data))


def _db(directory: Path) -> Path:
    """The database file the index folder's manifest names."""
    return directory / json.loads((directory / "manifest.json").read_text())["database"]


DAMAGE = {
    "garbage database": lambda d: _db(d).write_bytes(os.urandom(8192)),
    "damaged pages": lambda d: _corrupt_pages(_db(d)),
    "missing database": lambda d: _db(d).unlink(),
    "damaged manifest": lambda d: (d / "manifest.json").write_text('{"format": "qa-ind'),
    "manifest not an object": lambda d: (d / "manifest.json").write_text("[1, 2]"),
    "missing manifest": lambda d: (d / "manifest.json").unlink(),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_or_missing_index_file_is_a_clear_error_naming_the_rebuild(
    built, docs, damage, capsys, monkeypatch
):
    settings, expected = built
    DAMAGE[damage](settings.index_dir)
    with pytest.raises(IndexCorrupt) as info:
        index = reopen(settings)
        index.search("Danube countries", k=3)
        index.documents()
    message = str(info.value)
    assert "\n" not in message and "qa index --rebuild" in message, message
    # the command it names repairs the index
    from qa import cli

    monkeypatch.setattr("qa.index.core.get_embedder", lambda *a, **k: FakeEmbedder())
    monkeypatch.chdir(docs.parent)
    code = cli.main(["index", "--rebuild", "--index", str(settings.index_dir), str(docs)])
    assert code == 0, capsys.readouterr()
    index = reopen(settings)
    hits = index.search("Danube countries", k=3)
    assert [h.source for h in hits] == [s for _, s in expected]
    consistent(index)
    index.close()


@pytest.mark.slow
def test_the_cli_reports_a_damaged_index_in_one_line_without_a_traceback(tmp_path):
    shutil.copytree(PROJECT_ROOT / "corpus", tmp_path / "corpus")
    env = {**os.environ, "QA_INDEX": str(tmp_path / "index")}
    run = lambda *a: subprocess.run(  # noqa: E731
        [str(QA), *a], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env
    )
    assert run("index", "corpus").returncode == 0
    _corrupt_pages(_db(tmp_path / "index"))
    for argv in (["search", "Ford"], ["list"], ["ask", "Did Ford deny it?", "--no-llm"]):
        done = run(*argv)
        assert done.returncode == 1, (argv, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("qa: error:") and "qa index --rebuild" in line, line
    assert run("index", "--rebuild", "corpus").returncode == 0
    done = run("search", "completely false", "--mode", "bm25", "-k", "1")
    assert done.returncode == 0 and "completely false" in done.stdout
