"""`qa index PATH --ray [ADDRESS]`: ingestion as a Ray Data pipeline.

    from_items(the files to read)                       which files: the index's own change
      → map(read, hash, load, chunk)     Ray tasks      detection (size and mtime, then the
      → map_batches(embed)               actor pool     content hash), in the driver
      → the driver: one SQLite transaction, in file order (`qa.index.bulk`)

Reading and parsing run as Ray tasks through the same code `qa index` runs in its worker
processes (`qa.ingest.parallel.read_and_load`, the one dispatcher of formats), and chunking
with the index's chunking and limits (`Writer._chunk_within_limit`). Embedding runs in a
fixed pool of actors, each holding one embedder of the index's model on the index's backend
(`qa.models.embedder.make_embedder`), so the vectors are the ones `qa index` would make.
The result is an ordinary index, written by the driver: SQLite takes one writer.

With no ADDRESS a local Ray instance is started for the run (usage stats off, no
dashboard) and stopped after it; with one, `ray.init(address=...)` joins that cluster, whose
nodes must have qa installed (the same version) and see the files at the same paths.

A parsing task whose worker dies (killed, out of memory, a crashing parser) is retried once
(`RETRIES`); if it dies again, or an embedding actor dies, the run fails with one line
(`RayJobFailed`) and, because nothing is committed before every file is done, the index is
left as it was.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import pickle
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import BadInput, QAError
from qa.index.bulk import Job, Outcome, bulk_update
from qa.index.writer import Writer
from qa.ingest.parallel import Loaded, read_and_load
from qa.records import IndexReport

log = logging.getLogger(__name__)

# A read-and-parse task whose worker process dies is tried again this many times, then the
# run fails; an embedding actor that dies fails it at once (see `pipeline`).
RETRIES = 1
# Share of the cluster's CPUs the embedding actors take by default (the rest read and parse).
EMBED_SHARE = 0.75
# Documents per batch sent to an embedding actor, at most (fewer for small runs, so every
# actor gets work).
MAX_BATCH_DOCS = 32
# Files one read-and-parse task takes at most (see `_blocks`).
FILES_PER_BLOCK = 64
INSTALL_HINT = "pip install -e '.[ray]'"
# Settings the workers read from their environment that must be the driver's: OCR on or off
# (`qa index --no-ocr` sets it for the run). The offline switches need no forwarding: every
# worker imports qa.config, which sets them. Forwarded only when set, since a runtime_env
# of its own makes Ray start workers for it instead of reusing its pool.
FORWARDED_ENV = ("QA_OCR",)


class RayJobFailed(QAError):
    """The Ray pipeline failed (a worker died twice, or the cluster went away): nothing
    was committed."""


@dataclass(frozen=True)
class RayOptions:
    """How to run on Ray. `address`: None or "local" starts a local instance for the run;
    else a cluster's address ("auto", "HOST:PORT", "ray://HOST:PORT"). `workers`: embedding
    actors (default: EMBED_SHARE of the cluster's CPUs). `cpus`: CPUs of a local instance
    (default: the machine's, `settings.threads`)."""

    address: str | None = None
    workers: int | None = None
    cpus: int | None = None


@dataclass(frozen=True)
class EmbedderSpec:
    """Makes the index's embedder in a worker: `make_embedder(model, backend, threads)`."""

    model: str
    backend: str
    threads: int | None = None

    def __call__(self):
        from qa.models.embedder import make_embedder

        return make_embedder(self.model, self.backend, threads=self.threads)


@dataclass(frozen=True)
class Plan:
    """How the cluster's CPUs are shared: `workers` embedding actors of `actor_cpus` each
    (running `threads` threads), and read-and-parse tasks of `load_cpus` each."""

    workers: int
    actor_cpus: float
    threads: int
    load_cpus: float

    @classmethod
    def of(cls, total_cpus: float, workers: int | None) -> Plan:
        total = max(1.0, float(total_cpus))
        if workers is not None and workers < 1:
            raise BadInput(f"the number of Ray workers must be at least 1, got {workers}")
        workers = workers or max(1, int(total * EMBED_SHARE))
        share = total * EMBED_SHARE / workers
        # Ray takes fractions of a CPU only below one
        actor_cpus = math.floor(share) if share >= 1 else math.floor(share * 100) / 100
        actor_cpus = max(actor_cpus, 0.01)
        left = total - workers * actor_cpus
        load_cpus = max(0.01, min(0.5, math.floor(left * 100) / 100))
        threads = max(1, round(total / workers)) if share >= 1 else 1
        return cls(workers, actor_cpus, threads, load_cpus)


def ray_index(
    index,
    paths: Sequence[str | Path],
    options: RayOptions | bool | None = None,
    *,
    remove_missing: bool = True,
    progress: Callable | None = None,
    embedder_factory: Callable | None = None,
    load: Callable[[Job], Loaded] | None = None,
) -> IndexReport:
    """Index new or changed files under `paths` into `index` (an open `Index`) on Ray; see
    the module docstring. `embedder_factory`: a picklable callable that makes the index's
    embedder in a worker (default: the index's model on its backend). `load`: what reads one
    file (default `read_and_load`; tests inject failures here)."""
    if not isinstance(options, RayOptions):  # None or True: the settings' cluster
        options = RayOptions(index.settings.ray_address, index.settings.ray_workers)
    require_ray()
    factory = embedder_factory or _spec_of(index)
    load = load or read_and_load

    def produce(jobs: Sequence[Job]) -> Iterator[Outcome]:
        with cluster(options.address, options.cpus or index.settings.threads) as ray:
            plan = Plan.of(ray.cluster_resources().get("CPU", 1), options.workers)
            if plan.workers > len(jobs):  # an actor per file at most
                plan = Plan.of(ray.cluster_resources().get("CPU", 1), len(jobs))
            if isinstance(factory, EmbedderSpec) and factory.threads is None:
                worker_factory = EmbedderSpec(factory.model, factory.backend, plan.threads)
            else:
                worker_factory = factory
            log.info(
                "Ray: %d files, %d embedding actors of %g CPU, parsing tasks of %g CPU",
                len(jobs),
                plan.workers,
                plan.actor_cpus,
                plan.load_cpus,
            )
            ds = pipeline(
                ray, jobs, plan, index.settings, _chunking(index), factory, worker_factory, load
            )
            yield from _in_order(ray, ds, len(jobs))

    return bulk_update(index, paths, produce, remove_missing=remove_missing, progress=progress)


def _spec_of(index) -> EmbedderSpec:
    from qa.models.embedder import declared_backend

    backend = declared_backend(index.embedder)
    if backend is None:
        raise BadInput(
            f"the index's embedder {index.embedder.name!r} names no backend, so Ray workers "
            "cannot make it: give an embedder_factory"
        )
    return EmbedderSpec(index.manifest["embedder"]["name"], backend)


def _chunking(index) -> dict:
    return dict(index.manifest["chunking"])


# --- the cluster ---------------------------------------------------------------------------


def require_ray() -> None:
    """BadInput saying how to install the extra if Ray is not installed (without importing
    it: that takes seconds, and a run with nothing to read never needs it)."""
    if importlib.util.find_spec("ray") is None:
        import_ray()


def import_ray():
    """The `ray` module (usage stats off), or BadInput saying how to install the extra."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise BadInput(f"--ray needs Ray, an optional extra: {INSTALL_HINT}") from None
    return ray


@contextmanager
def cluster(address: str | None, cpus: int | None = None):
    """Ray, connected: to the instance this process already joined (left running after),
    to a new local one (stopped after), or to the cluster at `address`."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = {"logging_level": _ray_log_level(), "log_to_driver": False}
    try:
        if address in (None, "", "local"):
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        where = "start a local Ray instance" if address in (None, "", "local") else address
        raise RayJobFailed(
            f"cannot connect to the Ray cluster at {where}: {detail}"
            if address not in (None, "", "local")
            else f"cannot {where}: {detail}"
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _ray_log_level() -> int:
    """How much of Ray's own logging to show: all of it when qa logs at debug level (a
    `--debug` run), else only what is fatal."""
    return logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.CRITICAL


# --- the pipeline ----------------------------------------------------------------------------


def pipeline(ray, jobs, plan: Plan, settings, chunking: dict, tokenizer, factory, load):
    """The Ray Dataset of `jobs`' outcomes (lazy: it runs as the driver reads it)."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # qa shows its own
    ctx.print_on_execution_start = False
    ctx.max_errored_blocks = 0
    # Ray Data logs every failure with a traceback and notices such as "progress bars
    # disabled"; qa turns failures into one line (`RayJobFailed`)
    logging.getLogger("ray.data").setLevel(_ray_log_level())
    forwarded = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    env = {"env_vars": forwarded} if forwarded else None
    rows = [
        {"i": i, "path": str(j.path), "source": j.source, "old": j.old_sha256 or ""}
        for i, j in enumerate(jobs)
    ]
    batch = max(1, min(MAX_BATCH_DOCS, len(rows) // (4 * plan.workers) or 1))
    with warnings.catch_warnings():
        # retries can only be set through `ray_remote_args` in Ray 2.60 (deprecated there)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        ds = ray.data.from_items(rows, override_num_blocks=_blocks(len(rows), plan.workers))
        ds = ds.map(
            load_and_chunk,
            fn_kwargs={
                "load": load,
                "settings": settings,
                "chunking": chunking,
                "tokenizer": tokenizer,
            },
            num_cpus=plan.load_cpus,
            runtime_env=env,
            max_retries=RETRIES,
        )
        return ds.map_batches(
            Embed,
            fn_constructor_args=(factory,),
            batch_size=batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=plan.workers),
            num_cpus=plan.actor_cpus,
            runtime_env=env,
            # not restarted: Ray Data keeps an actor's constructor arguments in the object
            # store, and Ray's core logs an error line on stderr for every actor that could
            # restart with them; an actor's death fails the run instead (nothing committed)
            max_restarts=0,
        )


def _blocks(files: int, workers: int) -> int:
    """How many blocks the files are cut into: a few per actor, and at most FILES_PER_BLOCK
    files each (a parsing task reads one block; a worker's death retries all of it)."""
    return max(1, min(files, 4 * workers), -(-files // FILES_PER_BLOCK))


def _in_order(ray, ds, n: int) -> Iterator[Outcome]:
    """The outcomes in job order, as the pipeline finishes them (in any order); Ray's errors
    become one `RayJobFailed` line."""
    pending: dict[int, Outcome] = {}
    nxt = 0
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for j in range(len(batch["i"])):
                pending[int(batch["i"][j])] = _outcome(batch, j)
            while nxt in pending:
                yield pending.pop(nxt)
                nxt += 1
    except ray.exceptions.RayError as exc:
        raise RayJobFailed(
            f"the Ray job failed: {_why(exc)}; nothing was committed, the index is as it was "
            "(run it again: only new or changed files are read)"
        ) from None
    if nxt != n:
        raise RayJobFailed(f"the Ray job returned {nxt} of {n} files; nothing was committed")


def _why(exc: BaseException) -> str:
    """One line on why a Ray job failed: the innermost cause's type and first line."""
    from ray import exceptions as rx

    kinds = (rx.WorkerCrashedError, rx.ActorDiedError, rx.NodeDiedError, rx.OutOfMemoryError)
    seen = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, kinds):
            what = {
                rx.WorkerCrashedError: "a worker process died",
                rx.ActorDiedError: "an embedding actor died",
                rx.NodeDiedError: "a node died",
                rx.OutOfMemoryError: "a worker ran out of memory",
            }[next(k for k in kinds if isinstance(cause, k))]
            tries = "" if isinstance(cause, rx.ActorDiedError) else f" (tried {RETRIES + 1} times)"
            return what + tries
        cause = getattr(cause, "cause", None) or cause.__cause__
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {text[:200]}"


def _outcome(batch: dict, j: int) -> Outcome:
    if batch["error"][j]:
        return Outcome(sha256=str(batch["sha256"][j]), error=str(batch["error"][j]))
    if batch["same"][j]:
        return Outcome(sha256=str(batch["sha256"][j]), same=True)
    doc, chunks = pickle.loads(batch["payload"][j])
    dim = int(batch["dimension"][j])
    vectors = np.frombuffer(batch["vectors"][j], dtype=np.float32).reshape(len(chunks), dim)
    return Outcome(sha256=str(batch["sha256"][j]), doc=doc, chunks=chunks, vectors=vectors)


# --- in the workers ------------------------------------------------------------------------

_EMBEDDERS: dict = {}  # per worker process: made once, reused by every task


def _embedder(factory):
    try:
        emb = _EMBEDDERS.get(factory)
    except TypeError:  # not hashable: made each time
        return factory()
    if emb is None:
        emb = _EMBEDDERS[factory] = factory()
    return emb


class _ChunkRules:
    """The index's chunking and passage limit (the Writer's own methods) without an index."""

    _chunk = Writer._chunk
    _chunk_within_limit = Writer._chunk_within_limit

    def __init__(self, settings, chunking: dict, embedder) -> None:
        self.settings = settings
        self.manifest = {"chunking": chunking}
        self.embedder = embedder


def load_and_chunk(row: dict, *, load, settings, chunking: dict, tokenizer) -> dict:
    """One file: read, hash and load it (`load`), then chunk it as the index does."""
    job = Job(Path(row["path"]), row["source"], row["old"] or None)
    loaded = load(job)
    out = {
        "i": row["i"],
        "sha256": loaded.sha256,
        "same": bool(loaded.same),
        "error": loaded.error or "",
        "payload": b"",
    }
    if loaded.error is None and not loaded.same:
        chunks = _ChunkRules(settings, chunking, _embedder(tokenizer))._chunk_within_limit(
            loaded.doc
        )
        if isinstance(chunks, str):
            out["error"] = chunks
        else:
            out["payload"] = pickle.dumps((loaded.doc, tuple(chunks)), pickle.HIGHEST_PROTOCOL)
    return out


class Embed:
    """An embedding actor: one embedder, made once; embeds a batch of documents' chunks."""

    def __init__(self, factory) -> None:
        self.embedder = factory()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        parsed = [pickle.loads(p) if len(p) else None for p in batch["payload"]]
        texts = [c.text for d in parsed if d is not None for c in d[1]]
        vectors = self.embedder.embed(texts) if texts else np.zeros((0, 0), np.float32)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        out, k = [], 0
        for d in parsed:
            n = len(d[1]) if d is not None else 0
            out.append(vectors[k : k + n].tobytes())
            k += n
        batch["vectors"] = np.array(out, dtype=object)
        batch["dimension"] = np.full(len(parsed), vectors.shape[1] if texts else 0, np.int64)
        return batch
