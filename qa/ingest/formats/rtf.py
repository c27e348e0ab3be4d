"""RTF (striprtf): the document's text, control words and groups (fonts, colours, pictures)
dropped, `\\'xx` escapes decoded by the declared code page (cp1252 by default)."""

from __future__ import annotations

import re
from pathlib import Path

from qa.ingest.base import LoadedDocument, Unsupported, document, newlines, read, reason

_CODEPAGE = re.compile(rb"\\ansicpg(\d+)")


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    from striprtf.striprtf import rtf_to_text

    data = read(path, data)
    if not data.lstrip()[:5] == b"{\\rtf":
        raise Unsupported("not an RTF file (it does not start with {\\rtf)")
    match = _CODEPAGE.search(data[:4096])
    encoding = f"cp{match.group(1).decode()}" if match else "cp1252"
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "cp1252"
    try:
        text = rtf_to_text(data.decode("latin-1"), encoding=encoding, errors="replace")
    except Exception as exc:
        raise Unsupported(reason("corrupt RTF", exc)) from exc
    lines = [line.rstrip() for line in newlines(text).replace("\x00", "").split("\n")]
    return document(path, source, "\n".join(lines).strip(), "")
