"""qa: offline question answering over a folder of documents, with verified citations.

from qa import Index
index = Index.build(["corpus"], "index")
for hit in index.search("Did Ford deny the Xiaomi report?", k=3):
    print(hit.source, hit.start, hit.end, hit.text)
"""

__version__ = "0.1.0"

from .config import Settings  # noqa: E402  (sets the offline environment first)
from .errors import QAError  # noqa: E402
from .index import Index  # noqa: E402
from .records import Answer, Chunk, Citation, Document, DocumentInfo, Hit, IndexReport  # noqa: E402

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "Document",
    "DocumentInfo",
    "Hit",
    "Index",
    "IndexReport",
    "QAError",
    "Settings",
    "__version__",
]
