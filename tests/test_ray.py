"""`qa index PATH --ray`: ingestion as a Ray Data pipeline, on a local Ray cluster (2 CPUs).

The result must be the index the single-machine path makes of the same folder; a re-run
reads and embeds only what changed; a worker killed mid-run fails the run in one line and
leaves the index as it was. Fake embedders (tests/fakes.py, tests/ray_fakes.py, pickled by
value into the workers) keep most of it fast; one test runs the real default embedder.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

ray = pytest.importorskip(
    "ray", reason="the ray extra is not installed (pip install -e '.[ray]'; make setup does)"
)

import fakes  # noqa: E402
import ray_fakes  # noqa: E402
from conftest import CORPUS, FORD_QUESTION  # noqa: E402
from fakes import FakeEmbedder  # noqa: E402

from qa import Index, Settings  # noqa: E402
from qa.config import PROJECT_ROOT  # noqa: E402
from qa.scale.ray_ingest import Plan, RayJobFailed, RayOptions, ray_index  # noqa: E402

# Ray Data's own settings object warns of its deprecated fields when it is copied
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
QUERIES = ("longest river in Africa", "Etna volcano", "cats purr", "the Danube", "Sicily")
FIXTURES = PROJECT_ROOT / "tests" / "fixtures"


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One local Ray instance for the module: 2 CPUs, a small object store, no dashboard."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    for module in (fakes, ray_fakes):  # the workers need not import the tests
        ray.cloudpickle.register_pickle_by_value(module)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024 * 1024,
        logging_level=logging.ERROR,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


@pytest.fixture
def folder(docs: Path) -> Path:
    """The shared small folder plus a few more files (more files than actors)."""
    for i in range(6):
        (docs / f"note-{i}.txt").write_text(
            f"Note {i}. The Nile floods every year. Cats number {i} sleep in the sun.\n\n"
            f"Paragraph two of note {i} mentions the Danube and the Alps.",
            encoding="utf-8",
        )
    (docs / "page.html").write_text(
        "<html><body><h1>Volcanoes</h1><p>Etna and Vesuvius are in Italy.</p></body></html>",
        encoding="utf-8",
    )
    return docs


def _open(directory: Path, settings: Settings) -> Index:
    return Index.open(directory, settings=settings, embedder=FakeEmbedder(), create=True)


def _contents(index: Index) -> list[tuple]:
    """Everything searchable in an index: per chunk id, its document, span, text, vector."""
    ids = index.store.vector_ids()
    rows = index.store.chunks(ids.tolist())
    _, vectors = index.store.vectors_for(ids.tolist())
    return [
        (int(i), rows[int(i)].source, rows[int(i)].start, rows[int(i)].end, rows[int(i)].text)
        + tuple(round(float(x), 5) for x in v)
        for i, v in zip(ids, vectors, strict=True)
    ]


def _hits(index: Index, query: str, mode: str = "hybrid") -> list[tuple]:
    return [
        (h.chunk_id, h.source, h.start, h.end, round(h.score, 4))
        for h in index.search(query, 5, mode=mode)
    ]


def test_plan_shares_the_cpus():
    assert Plan.of(2, None) == Plan(workers=1, actor_cpus=1, threads=2, load_cpus=0.5)
    two = Plan.of(2, 2)
    assert two.workers == 2 and two.actor_cpus == 0.75 and two.threads == 1
    assert 2 * two.actor_cpus + two.load_cpus <= 2  # parsing always has room to run
    assert Plan.of(64, None).workers == 48


def test_ray_index_equals_the_single_machine_index(tmp_path, folder, settings):
    single = Index.build([folder], tmp_path / "single", settings=settings, embedder=FakeEmbedder())
    with _open(tmp_path / "on-ray", settings) as index:
        report = ray_index(index, [folder], RayOptions(workers=2), embedder_factory=FakeEmbedder)
        assert sorted(report.added) == sorted(d.source for d in single.documents())
        assert report.chunks_embedded == len(single) and not report.skipped
        assert index.documents() == single.documents()
        assert _contents(index) == _contents(single)
        status = index.status()
        assert status.chunks == status.vectors == len(single)
        for query in QUERIES:
            for mode in ("hybrid", "dense", "bm25"):
                assert _hits(index, query, mode) == _hits(single, query, mode)
        assert index.roots() == single.roots()
    # reopened from disk (the FAISS file saved), it is still the same index
    with Index.open(tmp_path / "on-ray", settings=settings, embedder=FakeEmbedder()) as again:
        assert _hits(again, "Etna volcano") == _hits(single, "Etna volcano")
    single.close()


def test_rerun_embeds_only_the_changed_file(tmp_path, folder, settings):
    counting = ray_fakes.Counting(str(tmp_path / "embedded.log"))
    with _open(tmp_path / "index", settings) as index:
        first = ray_index(index, [folder], RayOptions(workers=2), embedder_factory=counting)
        assert counting.embedded() == first.chunks_embedded == len(index)

        (folder / "cats.txt").write_text("Cats are now said to nap all day long.", "utf-8")
        (folder / "note-0.txt").unlink()
        os.utime(folder / "note-1.txt", (1, 1))  # touched, same content: not embedded
        before = counting.embedded()
        second = ray_index(index, [folder], RayOptions(workers=2), embedder_factory=counting)
        assert second.updated == ("docs/cats.txt",) and second.added == ()
        assert second.removed == ("docs/note-0.txt",)
        assert "docs/note-1.txt" in second.unchanged
        assert counting.embedded() - before == second.chunks_embedded == 1
        hit = index.search("nap all day", 1)[0]
        assert hit.source == "docs/cats.txt" and "nap" in hit.text
        status = index.status()
        assert status.chunks == status.vectors

        # nothing changed: Ray is not even needed; the touched file's mtime was recorded
        third = ray_index(index, [folder], RayOptions(workers=2), embedder_factory=counting)
        assert third.chunks_embedded == 0 and not (third.added or third.updated)
        assert counting.embedded() - before == 1


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"load": ray_fakes.DieOn("rivers.md")}, id="parsing-task"),
        pytest.param({"embedder_factory": ray_fakes.MakeDying("Danube")}, id="embedding-actor"),
    ],
)
def test_a_killed_worker_fails_the_run_and_leaves_the_index_as_it_was(
    tmp_path, folder, settings, broken
):
    with _open(tmp_path / "index", settings) as index:
        index.sync([folder])  # the previous index, made on one machine
        before_docs, before = index.documents(), _contents(index)
        before_hits = {q: _hits(index, q) for q in QUERIES}
        generation = index.store.generation()
        for path in folder.rglob("*.*"):  # every file changes: all must be read again
            path.write_text(path.read_text("utf-8") + "\n\nThe Danube is blue.", "utf-8")
        kwargs = {"embedder_factory": FakeEmbedder, **broken}
        with pytest.raises(RayJobFailed) as failed:
            ray_index(index, [folder], RayOptions(workers=2), **kwargs)
        message = str(failed.value)
        assert "\n" not in message and "died" in message and "nothing was committed" in message
        assert index.store.generation() == generation  # not one transaction committed
        assert index.documents() == before_docs and _contents(index) == before
        assert {q: _hits(index, q) for q in QUERIES} == before_hits
        # the write lock was released, and the next run finishes the work
        report = index.sync([folder])
        assert len(report.updated) == len(before_docs)
        assert "Danube is blue" in index.document_text("docs/cats.txt")


def test_cli_on_the_sample_corpus_with_the_default_embedder(tmp_path, real_embedder, capsys):
    """`qa index corpus --ray` with the default embedder (onnx, int8) in the actors: the
    index `qa index corpus` makes, to the last bit of every vector."""
    from qa import cli

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    argv = ["index", str(corpus), "--index", str(tmp_path / "on-ray"), "-q", "--ray"]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "1 added" in out and err == ""
    single = Index.build([corpus], tmp_path / "single", embedder=real_embedder)
    with Index.open(tmp_path / "on-ray", embedder=real_embedder) as index:
        assert index.manifest["embedder"] == single.manifest["embedder"]
        assert _contents(index) == _contents(single)
        for query in (FORD_QUESTION, "Who is the CEO of Ford?", "joint venture in the US"):
            assert _hits(index, query) == _hits(single, query)
        assert index.search(FORD_QUESTION, 1)[0].source == "corpus/ford-xiaomi-joint-venture.txt"
    code = cli.main(argv)
    out, _ = capsys.readouterr()
    assert code == 0 and "1 unchanged" in out and "0 chunks embedded" in out
    # --rebuild --ray: everything again on Ray into a staging index, switched in at the end
    old_id = Index.open(tmp_path / "on-ray", embedder=real_embedder).manifest["id"]
    code = cli.main([*argv, "--rebuild"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "1 added" in out and "chunks embedded" in out and "0 chunks embedded" not in out
    with Index.open(tmp_path / "on-ray", embedder=real_embedder) as index:
        assert index.manifest["id"] != old_id
        assert [c[1:] for c in _contents(index)] == [c[1:] for c in _contents(single)]
        assert _hits(index, FORD_QUESTION)[0][1:4] == _hits(single, FORD_QUESTION)[0][1:4]
    single.close()


def test_every_format_with_a_real_embedder_equals_the_single_machine_index(tmp_path):
    """The sample corpus and one file of each fixture format, embedded in two actors by the
    real model on the default backend (onnx, int8), whose vectors do not depend on how
    texts are batched (one text per ONNX Runtime run): the same vectors, bit for bit, and
    the same hits."""
    from qa.models.embedder import get_embedder

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    for path in FIXTURES.glob("sample.*"):
        shutil.copy(path, corpus / path.name)
    embedder = get_embedder(backend="onnx")
    single = Index.build([corpus], tmp_path / "single", embedder=embedder)
    with Index.open(tmp_path / "on-ray", embedder=embedder, create=True) as index:
        report = ray_index(index, [corpus], RayOptions(workers=2))  # the index's model
        assert len(report.added) == len(single.documents()) == 6 and not report.skipped
        assert index.manifest["embedder"] == single.manifest["embedder"]
        assert index.documents() == single.documents()
        assert _contents(index) == _contents(single)
        for query in (FORD_QUESTION, "sample heading", "page two", "a table row"):
            for mode in ("hybrid", "dense"):
                assert _hits(index, query, mode) == _hits(single, query, mode)
    single.close()
