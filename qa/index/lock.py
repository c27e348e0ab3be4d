"""An exclusive, non-blocking lock file: one writer per index; other writers fail fast with
the holder's pid, readers are never blocked (SQLite's WAL lets them read meanwhile)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from qa.errors import IndexLocked


class FileLock:
    """An exclusive, non-blocking lock file: one writer per index, others fail fast."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._depth = 0

    def __enter__(self):
        if self._depth == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise IndexLocked(
                    f"another process (pid {holder}) is writing to {self.path.parent}/; "
                    "wait for it to finish and try again"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            self._fd = fd
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
