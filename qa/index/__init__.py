"""The index: lifecycle and manifest, the SQLite/FTS5 store, FAISS vectors, fusion, the lock."""

from qa.index.core import Index, clear

__all__ = ["Index", "clear"]
