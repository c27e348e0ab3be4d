"""The index: lifecycle and manifest, the SQLite/FTS5 store, FAISS vectors, fusion, the lock.

core.py      Index: opening, reading, searching, following rebuilds and other writers
writer.py    adding, updating and removing documents
rebuild.py   rebuilding into a staging folder and switching to it atomically
manifest.py  the files on disk and what they say they are
store.py     SQLite (documents, chunks, vectors, FTS5/BM25)
vectors.py   FAISS
fusion.py    fusing dense and BM25 rankings
lock.py      the one-writer lock file
"""

from qa.index.core import Index, clear
from qa.index.rebuild import rebuild

__all__ = ["Index", "clear", "rebuild"]
