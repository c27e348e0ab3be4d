"""The index write lock (qa.index.lock, on the `filelock` package): re-entrant in its holder,
fails fast elsewhere with the holder's pid, and is released when the holder dies."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time

import pytest

from qa.errors import IndexLocked
from qa.index.lock import FileLock


def _hold(path, ready, release):
    with FileLock(path):
        ready.set()
        release.wait(30)


def _held_by_someone(path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_reentrant_shared_by_threads_and_released(tmp_path):
    path = tmp_path / "index" / ".lock"  # the folder is made on first use
    lock = FileLock(path)
    with lock:
        assert path.read_text() == str(os.getpid())
        with lock:  # re-entered by its holder
            pass
        entered = []
        thread = threading.Thread(target=lambda: lock.__enter__() and entered.append(lock))
        thread.start()
        thread.join()
        assert entered  # another thread of the same holder does not fail
        lock.__exit__(None, None, None)
        assert _held_by_someone(path)
    assert path.exists() and not _held_by_someone(path)
    with FileLock(path):  # a new instance takes it again
        assert _held_by_someone(path)


def test_another_process_fails_fast_with_the_holders_pid(tmp_path):
    path = tmp_path / ".lock"
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        t0 = time.monotonic()
        with pytest.raises(IndexLocked) as info, FileLock(path):
            pass
        assert time.monotonic() - t0 < 2
        assert str(info.value) == (
            f"another process (pid {holder.pid}) is writing to {tmp_path}/; "
            "wait for it to finish and try again"
        )
        assert path.read_text() == str(holder.pid)  # a failed attempt leaves the pid alone
    finally:
        release.set()
        holder.join(10)
    with FileLock(path):
        assert path.read_text() == str(os.getpid())


def test_a_killed_holder_releases_the_lock(tmp_path):
    path = tmp_path / ".lock"
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(path, ready, release))
    holder.start()
    assert ready.wait(10)
    holder.kill()
    holder.join(10)
    with FileLock(path):
        assert path.read_text() == str(os.getpid())
