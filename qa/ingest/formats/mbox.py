"""Mailboxes (.mbox, the standard library's `mailbox`): every message read as the .eml loader
reads one (`eml.message_part`), located by its number in the mailbox (from 1).

`mailbox.mbox` reads a file, so the bytes (the ones the index hashed) go to a temporary file.
A message that cannot be read (e.g. encrypted) is left out with a warning; the others are kept.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from qa.ingest.base import LoadedDocument, Unsupported, one_line, parts_document, read
from qa.ingest.formats.eml import message_part

MAX_MESSAGES = 100_000


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    import email
    import mailbox
    from email import policy

    data = read(path, data)
    if not data.startswith(b"From "):
        raise Unsupported("not an mbox mailbox (it does not start with a 'From ' line)")
    fd, name = tempfile.mkstemp(suffix=".mbox")
    parts, failed = [], []
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        box = mailbox.mbox(name, factory=None, create=False)
        for number, key in enumerate(box.iterkeys(), 1):
            if number > MAX_MESSAGES:
                raise Unsupported(f"too large: more than {MAX_MESSAGES:,} messages")
            try:
                message = email.message_from_bytes(box.get_bytes(key), policy=policy.default)
                parts.append(message_part(message, number))
            except Exception as exc:
                failed.append(f"message {number}: {one_line(exc)}")
        box.close()
    finally:
        os.unlink(name)
    notes = (f"{len(failed)} messages could not be read: {failed[0]}",) if failed else ()
    if not any(p.text.strip() for p in parts):
        raise Unsupported(
            "no readable messages in the mailbox" + (f" ({failed[0]})" if failed else "")
        )
    return parts_document(path, source, parts, "", warnings=notes)
