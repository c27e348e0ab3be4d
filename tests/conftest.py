"""Shared fixtures: fake models for logic tests, the real ones for behaviour tests,
and temporary folders so no test touches the user's index/ or models/."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from fakes import FakeEmbedder  # noqa: E402

from qa.config import PROJECT_ROOT, Settings  # noqa: E402

CORPUS = PROJECT_ROOT / "corpus"
FORD_QUESTION = "Did Ford deny the Xiaomi report?"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No QA_* variable from the developer's shell leaks into a test."""
    for var in list(os.environ):
        if var.startswith("QA_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("QA_INDEX", str(tmp_path / "default-index"))


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.load(index_dir=tmp_path / "index", chunk_tokens=48, chunk_overlap=8)


@pytest.fixture
def docs(tmp_path) -> Path:
    """A small folder of text documents the tests may change."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "cats.txt").write_text(
        "Cats sleep for most of the day. A cat purrs when it is content.\n\n"
        "Domestic cats were first kept in the Near East.",
        encoding="utf-8",
    )
    (folder / "rivers.md").write_text(
        "# Rivers\n\nThe Nile is the longest river in Africa.\n\n"
        "## Europe\n\nThe Danube flows through ten countries.\n",
        encoding="utf-8",
    )
    sub = folder / "sub"
    sub.mkdir()
    (sub / "volcano.txt").write_text(
        "Mount Etna is an active volcano on Sicily. It erupts often.", encoding="utf-8"
    )
    return folder


@pytest.fixture(scope="session")
def real_embedder():
    from qa.models.embedder import get_embedder

    return get_embedder()


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory, real_embedder):
    """The sample corpus indexed with the real default embedder (built once per session)."""
    from qa import Index

    root = tmp_path_factory.mktemp("corpus-index")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    index = Index.build([corpus], root / "index", embedder=real_embedder)
    yield index
    index.close()
