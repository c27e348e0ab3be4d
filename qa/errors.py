"""The errors `qa` raises. Each message is one line that says what to do next.

They are turned into a one-line message and an exit code only at the edge
(the CLI and the UI); library code raises them and lets callers decide.
"""

from __future__ import annotations


class QAError(Exception):
    """Base class of every error `qa` raises on purpose."""

    exit_code = 1


class BadInput(QAError):
    """The user asked for something that cannot be done as asked."""

    exit_code = 2


class IndexNotFound(QAError):
    """No index at the given location."""


class IndexMismatch(QAError):
    """The index on disk was made with another embedder, chunking or format."""


class IndexLocked(QAError):
    """Another process is writing to the index."""


class IndexCorrupt(QAError):
    """The index on disk cannot be read."""


class ModelNotFound(QAError):
    """A model file or directory is missing or unusable."""
