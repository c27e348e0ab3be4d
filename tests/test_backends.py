"""Embedder backends: torch, onnx (int8) and onnx-fp32 on the real default model.

Each backend tokenizes alike (same chunks), embeds close to torch, finds the same top hits
on the sample corpus, is recorded in the manifest, and an index is searched with its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from qa import Index
from qa.config import EMBED_BACKENDS, PROJECT_ROOT, Settings
from qa.errors import BadInput, IndexMismatch
from qa.index.manifest import MANIFEST

CORPUS = PROJECT_ROOT / "corpus"
QUESTIONS = [
    "Did Ford deny the Xiaomi report?",
    "Who is the CEO of Ford?",
    "Where would the joint venture build cars?",
    "What did the Chinese insider claim?",
    "electric vehicles batteries",
]
SENTENCES = [
    "Ford denied the report about a joint venture with Xiaomi.",
    "The café served crème brûlée — naïvely, at 3½ euros.",
    "東京は日本の首都です。",
    "short",
    "A much longer sentence " * 40,
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedders():
    from qa.models.embedder import get_embedder

    return {b: get_embedder(backend=b) for b in EMBED_BACKENDS}


@pytest.fixture(scope="module")
def indexes(tmp_path_factory, embedders):
    """The sample corpus indexed once with each backend."""
    root = tmp_path_factory.mktemp("backends")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    out = {}
    for backend, emb in embedders.items():
        # 64-token chunks: a dozen passages of the sample corpus to rank, not three
        settings = Settings.load(
            index_dir=root / backend, embed_backend=backend, chunk_tokens=64, chunk_overlap=8
        )
        out[backend] = Index.build([corpus], root / backend, settings=settings, embedder=emb)
    yield out
    for index in out.values():
        index.close()


def test_backend_setting_is_validated(monkeypatch):
    assert Settings.load().embed_backend == "auto"
    assert Settings.load().build_backend() == "onnx"
    monkeypatch.setenv("QA_EMBED_BACKEND", "cuda")
    with pytest.raises(BadInput, match="QA_EMBED_BACKEND"):
        Settings.load()


def test_backend_flag_rejects_unknown_value():
    proc = subprocess.run(
        [sys.executable, "-m", "qa.cli", "search", "x", "--backend", "cuda"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "invalid choice: 'cuda'" in proc.stderr


def test_tokenization_is_the_same_on_every_backend(embedders):
    torch_emb = embedders["torch"]
    text = (CORPUS / "ford-xiaomi-joint-venture.txt").read_text(encoding="utf-8")
    texts = [text, *SENTENCES]
    expected = torch_emb.token_spans(texts)
    for backend, emb in embedders.items():
        assert emb.max_tokens == torch_emb.max_tokens == 254, backend
        assert emb.dimension == torch_emb.dimension == 384, backend
        assert emb.token_spans(texts) == expected, backend


def test_vectors_are_close_to_torch(embedders):
    base = embedders["torch"].embed(SENTENCES)
    fp32 = embedders["onnx-fp32"].embed(SENTENCES)
    int8 = embedders["onnx"].embed(SENTENCES)
    for vecs in (fp32, int8):
        assert vecs.shape == base.shape and vecs.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert (fp32 * base).sum(1).min() > 0.9999
    assert (int8 * base).sum(1).min() > 0.97
    # the order of inputs does not change a vector (batches are sorted by length)
    np.testing.assert_allclose(embedders["onnx"].embed(SENTENCES[::-1])[::-1], int8, atol=1e-5)


def test_onnx_vectors_do_not_depend_on_the_batch(embedders):
    """The int8 model's activation scale is per run: one text per run, so a text's vector
    is the same alone, among others, in any order."""
    emb = embedders["onnx"]
    text = CORPUS.joinpath("ford-xiaomi-joint-venture.txt").read_text(encoding="utf-8")
    texts = [p for p in text.split("\n") if len(p) > 40][:12]
    together = emb.embed(texts)
    alone = np.vstack([emb.embed([t]) for t in texts])
    assert np.array_equal(together, alone)
    assert np.array_equal(emb.embed(texts[::-1])[::-1], together)


def test_same_chunks_and_top_hits_as_torch(indexes):
    torch_index = indexes["torch"]
    assert torch_index.status().chunks >= 8
    chunks = [h.text for h in torch_index.search("Ford", k=50, mode="bm25")]
    for backend, index in indexes.items():
        assert index.status().chunks == torch_index.status().chunks, backend
        assert [h.text for h in index.search("Ford", k=50, mode="bm25")] == chunks, backend
        for q in QUESTIONS:
            # hybrid (what qa search and qa ask use): the same top hit; the fp32 export the
            # same top 3 in order, int8 at least 2 of them (measured: one of these five
            # questions gets another third hit with int8)
            want = [(h.source, h.start) for h in torch_index.search(q, k=3)]
            got = [(h.source, h.start) for h in index.search(q, k=3)]
            assert got[0] == want[0], (backend, q)
            if backend == "onnx-fp32":
                assert got == want, (backend, q)
            else:
                assert len(set(got) & set(want)) >= 2, (backend, q)
            # dense alone: the same top hit unless torch's own top two are a near-tie
            # (int8 moves cosine scores by about 0.005)
            want = torch_index.search(q, k=2, mode="dense")
            got = index.search(q, k=2, mode="dense")
            if want[0].score - want[1].score > 0.02:
                assert (got[0].source, got[0].start) == (want[0].source, want[0].start), (
                    backend,
                    q,
                )
            else:
                assert {(h.source, h.start) for h in got} == {(h.source, h.start) for h in want}


def test_manifest_records_the_backend(indexes):
    for backend, index in indexes.items():
        manifest = json.loads((index.directory / MANIFEST).read_text())
        assert manifest["embedder"]["backend"] == backend
        assert manifest["embedder"]["name"] == "all-MiniLM-L6-v2"
        if backend.startswith("onnx"):
            assert manifest["embedder"]["backend_file"].endswith(".onnx")
            assert len(manifest["embedder"]["backend_sha256"]) == 64


def test_an_index_is_searched_with_the_backend_that_built_it(indexes):
    for backend, index in indexes.items():
        with Index.open(index.directory, settings=Settings.load()) as reopened:
            assert reopened.embedder.backend == backend
            assert (
                reopened.search(QUESTIONS[0], k=1)[0].text
                == index.search(QUESTIONS[0], k=1)[0].text
            )
    other = Settings.load(embed_backend="torch")
    with pytest.raises(IndexMismatch, match="built with the 'onnx' embedder backend, not 'torch'"):
        Index.open(indexes["onnx"].directory, settings=other)


def test_an_index_without_a_recorded_backend_is_torch(tmp_path, indexes):
    folder = tmp_path / "legacy"
    shutil.copytree(indexes["torch"].directory, folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["embedder"]["backend"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with Index.open(folder, settings=Settings.load()) as index:
        assert index.embedder.backend == "torch"
        assert index.search(QUESTIONS[0], k=1)


def test_rebuild_with_another_backend(tmp_path, indexes):
    from qa.engine import Engine

    folder = tmp_path / "index"
    shutil.copytree(indexes["onnx"].directory, folder)
    settings = Settings.load(index_dir=folder, embed_backend="torch")
    with Engine(settings) as engine:
        engine.index_files([CORPUS], rebuild=True)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["embedder"]["backend"] == "torch"


def test_onnx_search_does_not_import_torch(indexes):
    code = (
        "import sys; from qa.cli.main import main; "
        f"rc = main(['search', 'Did Ford deny the Xiaomi report?', '--index', "
        f"{str(indexes['onnx'].directory)!r}, '-k', '1', '--json']); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', "
        "'ST' if 'sentence_transformers' in sys.modules else 'NO-ST'); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("NO-TORCH NO-ST")
    assert json.loads(proc.stdout[: proc.stdout.rindex("]") + 1])[0]["source"].endswith(".txt")


def test_onnx_ask_does_not_import_torch(indexes):
    """An extractive answer with the trained reader on its default backend (onnx), on an onnx
    index: no torch in the process, and the reader's direct answer is there."""
    from qa.models.reader import default_reader_path

    if not (default_reader_path() / "manifest.json").is_file():
        pytest.skip("no trained reader in models/reader/")
    code = (
        "import sys; from qa.cli.main import main; "
        f"rc = main(['ask', 'Who did Ford partner with?', '--index', "
        f"{str(indexes['onnx'].directory)!r}, '--no-llm', '--json']); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(rc)"
    )
    env = {k: v for k, v in os.environ.items() if k != "QA_READER_BACKEND"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("NO-TORCH")
    answer = json.loads(proc.stdout[: proc.stdout.rindex("}") + 1])
    assert answer["citations"] and answer["citations"][0]["source"].endswith(".txt")


def test_export_is_cached(embedders):
    from qa.models.onnx_export import ensure_export, read_meta

    emb = embedders["onnx"]
    folder = emb.folder
    stamp = (folder / "model_qint8.onnx").stat().st_mtime_ns
    assert ensure_export(emb.model_dir) == folder
    assert (folder / "model_qint8.onnx").stat().st_mtime_ns == stamp
    meta = read_meta(folder)
    assert meta["pooling"] == "mean" and meta["normalize"] and meta["max_seq_length"] == 256


def test_onnx_reader_gives_the_torch_readers_numbers():
    from qa.models.onnx_reader import OnnxReader
    from qa.models.reader import Reader, default_reader_path

    if not (default_reader_path() / "manifest.json").is_file():
        pytest.skip("no trained reader in models/reader/")
    text = "Ford was founded in 1903. Its CEO is Jim Farley. Ford denied the Xiaomi report."
    passages = [(text, [(0, 25), (26, 48), (49, len(text))]), ("Short one.", [(0, 10)])]
    torch_reader, onnx_reader = Reader(), OnnxReader()
    for q in ("Who is the CEO of Ford?", "When was Ford founded?", "Did Ford deny it?"):
        for a, b in zip(torch_reader.read(q, passages), onnx_reader.read(q, passages), strict=True):
            assert (a.span_start, a.span_end) == (b.span_start, b.span_end)
            assert [s.index for s in a.sentences] == [s.index for s in b.sentences]
            for x, y in zip(a.sentences, b.sentences, strict=True):
                assert abs(x.prob - y.prob) < 1e-4
            assert abs(a.p_yes - b.p_yes) < 1e-4 and abs(a.span_score - b.span_score) < 1e-4
    pairs = [("Jim Farley is the CEO.", text[26:48]), ("Xiaomi is the CEO.", text[26:48])]
    for x, y in zip(
        torch_reader.support_many("Who?", pairs),
        onnx_reader.support_many("Who?", pairs),
        strict=True,
    ):
        assert abs(x - y) < 1e-4
