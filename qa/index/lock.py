"""An exclusive, non-blocking lock file: one writer per index; other writers fail fast with
the holder's pid, readers are never blocked (SQLite's WAL lets them read meanwhile).

The locking is the `filelock` package's (`flock(2)` on Unix, which the kernel releases when the
holder dies); this module adds only the holder's pid in the file and qa's error message.
"""

from __future__ import annotations

import os
from pathlib import Path

from filelock import Timeout, UnixFileLock

from qa.errors import IndexLocked


def _write_pid(fd: int) -> None:
    """Record the holder's pid in the lock file (filelock calls this once it holds the lock)."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)


def _holder(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(32).decode(errors="replace").strip() or "?"
    except OSError:
        return "?"


class FileLock:
    """An exclusive, non-blocking lock file: one writer per index, others fail fast.

    Re-entrant: the same instance may be entered again (from any thread) while held."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = UnixFileLock(
            self.path,
            mode=0o644,
            thread_local=False,  # one holder per instance, as before: threads share it
            blocking=False,  # fail fast, never wait
            fallback_to_soft=False,
            preserve_lock_file=True,  # the file stays: waiters lock the same inode, it has the pid
            on_acquired=_write_pid,
        )

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise IndexLocked(
                f"another process (pid {_holder(self.path)}) is writing to {self.path.parent}/; "
                "wait for it to finish and try again"
            ) from None
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()
