"""qa: offline question answering over a folder of documents, with verified citations.

    import qa
    with qa.Engine(qa.Settings.load(index_dir="index"), create=True) as engine:
        engine.index_files(["corpus"])
        for hit in engine.search("Did Ford deny the Xiaomi report?", k=3):
            print(hit.source, hit.start, hit.end, hit.text)
        print(engine.ask("Did Ford deny the Xiaomi report?").text)

    qa.ask("Did Ford deny the Xiaomi report?", index="index")   # the shared engine of index/

Names are imported on first use, so `import qa` (and `qa --help`) stays instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Settings": "config",
    "QAError": "errors",
    "Engine": "engine",
    "Index": "index.core",
    "Turn": "answer.followup",
    "Answer": "records",
    "Chunk": "records",
    "Citation": "records",
    "Claim": "records",
    "Document": "records",
    "DocumentInfo": "records",
    "Hit": "records",
    "IndexReport": "records",
    "ask": "engine",
    "ask_stream": "engine",
}

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "Claim",
    "Document",
    "DocumentInfo",
    "Engine",
    "Hit",
    "Index",
    "IndexReport",
    "QAError",
    "Settings",
    "Turn",
    "__version__",
    "ask",
    "ask_stream",
]

if TYPE_CHECKING:
    from qa.answer.followup import Turn
    from qa.config import Settings
    from qa.engine import Engine, ask, ask_stream
    from qa.errors import QAError
    from qa.index.core import Index
    from qa.records import (
        Answer,
        Chunk,
        Citation,
        Claim,
        Document,
        DocumentInfo,
        Hit,
        IndexReport,
    )


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'qa' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
