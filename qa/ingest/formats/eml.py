"""E-mail (.eml, the standard library's `email` with its modern policy): subject, from, to,
date, the body (plain text, else the HTML part's visible text) and text attachments, located
as message 1 and headed by the subject. `message_part` is shared with the mbox loader.
"""

from __future__ import annotations

from pathlib import Path

from qa.ingest.base import LoadedDocument, Part, Unsupported, newlines, parts_document, read
from qa.records import Locator

_HEADERS = ("Subject", "From", "To", "Date")
_TEXT_ATTACHMENTS = ("text/plain", "text/markdown", "text/csv", "text/html")
MAX_ATTACHMENT_CHARS = 2_000_000


def _text_of(part) -> str:
    """The text of a MIME part: decoded by its charset; HTML as its visible text."""
    from qa.ingest.formats.html import visible_text

    try:
        content = part.get_content()
    except (LookupError, UnicodeError, AssertionError, ValueError):  # an unknown charset
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        content = visible_text(content)[0]
    return newlines(content)[:MAX_ATTACHMENT_CHARS].strip()


def message_part(message, number: int) -> Part:
    """One message as a part: header lines, the body, then each text attachment."""
    if message.get_content_type() in ("application/pkcs7-mime", "multipart/encrypted"):
        raise Unsupported("encrypted message (S/MIME or PGP): its body cannot be read")
    lines = []
    for name in _HEADERS:
        if value := " ".join(str(message.get(name, "") or "").split()):
            lines.append(f"{name}: {value}")
    blocks = ["\n".join(lines)] if lines else []
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None and (text := _text_of(body)):
        blocks.append(text)
    for attachment in message.iter_attachments():
        if attachment.get_content_type() not in _TEXT_ATTACHMENTS:
            continue
        if text := _text_of(attachment):
            name = attachment.get_filename() or "attachment"
            blocks.append(f"Attachment {' '.join(name.split())}:\n{text}")
    subject = " ".join(str(message.get("Subject", "") or "").split())
    heading = (subject,) if subject else ()
    return Part("\n\n".join(b for b in blocks if b), Locator(message=number), heading)


def parse(data: bytes):
    import email
    from email import policy

    return email.message_from_bytes(data, policy=policy.default)


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    data = read(path, data)
    if b"\x00" in data[:4096]:
        raise Unsupported("not an e-mail message (binary data)")
    message = parse(data)
    if not any(message.get(name) for name in _HEADERS):
        raise Unsupported("not an e-mail message (no Subject, From, To or Date header)")
    part = message_part(message, 1)
    return parts_document(path, source, [part], part.headings[0] if part.headings else "")
