"""The engine: request checks and the mode rule (with fakes), settings validation, and its
behaviour with the real models: an upload while questions are asked, and answer streams that
are closed early or abandoned without blocking the next answer."""

from __future__ import annotations

import shutil
import threading

import pytest
from conftest import CORPUS, FORD_QUESTION
from test_answer import FakeGenerator

import qa
from qa import Engine, Index, Settings
from qa.config import K_MAX
from qa.errors import BadInput


@pytest.fixture
def engine(docs, settings, fake_embedder):
    index = Index.build([docs], settings.index_dir, settings=settings, embedder=fake_embedder)
    yield Engine(settings, index=index)
    index.close()


# --- requests and settings ------------------------------------------------------------------


def test_the_public_api_exports_its_names():
    for name in qa.__all__:
        assert getattr(qa, name) is not None, name
    assert qa.Turn("q", "a").standalone == "q"


def test_mode_rule_and_request_checks(engine, tmp_path):
    assert engine.request().mode == "extractive"  # the settings' default
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    req = engine.request(model=gguf)  # a model given means the model answers
    assert req.mode == "llm" and req.model == gguf and req.settings.model == gguf
    assert engine.request(model=gguf, mode="extractive").mode == "extractive"
    assert engine.request(k=7, temperature=0.5).settings.k == 7
    for bad, match in [
        ({"k": 0}, f"between 1 and {K_MAX}"),
        ({"k": K_MAX + 1}, f"between 1 and {K_MAX}"),
        ({"k": 2.5}, "whole number"),
        ({"temperature": -1}, "temperature"),
        ({"mode": "magic"}, "unknown answer mode"),
        ({"mode": "llm", "model": "nothing-such.gguf"}, "unknown model"),
    ]:
        with pytest.raises(BadInput, match=match):
            engine.request(**bad)


@pytest.mark.parametrize(
    "var, value, match",
    [
        ("QA_K", "0", "QA_K"),
        ("QA_K", "many", "QA_K='many' is not a valid whole number"),
        ("QA_TEMPERATURE", "3", "QA_TEMPERATURE"),
        ("QA_MAX_TOKENS", "4096", "QA_MAX_TOKENS"),
        ("QA_N_CTX", "16", "QA_N_CTX"),
        ("QA_THREADS", "0", "QA_THREADS"),
        ("QA_MODE", "fast", "QA_MODE"),
        ("QA_FUSION", "max", "QA_FUSION"),
        ("QA_AUTH", "nopassword", "QA_AUTH"),
        ("QA_AUTH", ":secret", "QA_AUTH"),
        ("QA_MAX_UPLOAD_MB", "0", "QA_MAX_UPLOAD_MB"),
        ("QA_MAX_UPLOAD_MB", "lots", "QA_MAX_UPLOAD_MB='lots'"),
        ("QA_MAX_FILE_MB", "-1", "QA_MAX_FILE_MB"),
        ("QA_CHUNK_OVERLAP", "999", "QA_CHUNK_OVERLAP"),
    ],
)
def test_every_setting_is_checked_with_a_message_naming_its_variable(
    monkeypatch, var, value, match
):
    monkeypatch.setenv(var, value)
    with pytest.raises(BadInput, match=match) as info:
        Settings.load()
    assert "\n" not in str(info.value)


def test_auth_and_upload_cap_come_from_settings(monkeypatch):
    monkeypatch.setenv("QA_AUTH", "ann:s3cret")
    monkeypatch.setenv("QA_MAX_UPLOAD_MB", "2.5")
    s = Settings.load()
    assert s.login() == ("ann", "s3cret") and s.max_upload_mb == 2.5


def test_shared_engines_are_one_per_index_folder(docs, settings, fake_embedder):
    Index.build([docs], settings.index_dir, settings=settings, embedder=fake_embedder).close()
    a = Engine.shared(settings.index_dir, settings)
    assert Engine.shared(settings.index_dir, settings) is a
    Engine.close_shared()
    assert Engine.shared(settings.index_dir, settings) is not a
    Engine.close_shared()


def test_closing_an_answer_stream_closes_the_models_stream(engine):
    closed = []

    class Tracking(FakeGenerator):
        def stream(self, prompt, **kw):
            try:
                yield from super().stream(prompt, **kw)
            finally:
                closed.append(True)

    gen = Tracking(lambda p: "Mount Etna is an active volcano on Sicily [1]. " * 5)
    stream = engine.ask_stream("Where is Mount Etna?", mode="llm", model=gen)
    assert isinstance(next(stream), str)
    stream.close()
    assert closed == [True]


# --- with the real models -------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine")
    shutil.copytree(CORPUS, root / "corpus")
    settings = Settings.load(index_dir=root / "index")
    engine = Engine(settings, create=True)
    engine.index_files([root / "corpus"])
    yield engine, root
    engine.close()


@pytest.mark.slow
def test_indexing_while_questions_are_asked_with_the_real_embedder(real_engine):
    """Indexing tokenizes with other settings than searching embeds; on one fast tokenizer
    that raised "Already borrowed" when an upload met a question."""
    engine, root = real_engine
    more = root / "uploads"
    more.mkdir()
    for i in range(40):
        (more / f"note{i:02d}.txt").write_text(
            f"Note {i}. "
            + " ".join(f"The harbour crane number {i}-{j} lifts boxes." for j in range(40)),
            "utf-8",
        )
    errors: list[BaseException] = []
    done = threading.Event()

    def ask_loop():
        try:
            while not done.is_set():
                engine.search("cranes in the harbour", 3)
                answer = engine.ask(FORD_QUESTION)
                assert answer.citations and not answer.refused
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    askers = [threading.Thread(target=ask_loop) for _ in range(2)]
    for t in askers:
        t.start()
    try:
        report = engine.index_files([more], add_only=True)
    finally:
        done.set()
        for t in askers:
            t.join(120)
    assert not errors, repr(errors[0])
    assert len(report.added) == 40 and report.chunks_embedded >= 40


def _answer_in_thread(engine, **kw):
    out: list = []
    t = threading.Thread(target=lambda: out.append(engine.ask(FORD_QUESTION, **kw)), daemon=True)
    t.start()
    t.join(180)  # generous: only a blocked model (the defect) gets near it
    assert out, "the next answer was blocked by the earlier stream"
    return out[0]


@pytest.mark.slow
def test_a_stream_closed_early_or_abandoned_does_not_block_the_next_answer(real_engine):
    engine, _ = real_engine
    closed = engine.ask_stream(FORD_QUESTION, mode="llm")
    assert isinstance(next(closed), str)
    closed.close()
    assert _answer_in_thread(engine, mode="llm").mode in ("llm", "extractive")
    abandoned = engine.ask_stream(FORD_QUESTION, mode="llm")
    assert isinstance(next(abandoned), str)  # kept, never closed nor read again
    assert _answer_in_thread(engine, mode="llm").text
    abandoned.close()
