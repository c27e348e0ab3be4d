"""Bytes to text for plain-text formats (.txt, .md), newlines normalised to "\\n".

In order: a byte-order mark (UTF-8, UTF-16, UTF-32) is obeyed; then UTF-8; UTF-8 with a few
damaged bytes (a cut-off character) keeps the rest with U+FFFD in their place; then
Windows-1252 / Latin-1 if the result reads as Western text; then whatever `charset-normalizer`
detects (UTF-16/32 without a byte-order mark, Cyrillic, Greek, CJK code pages...), if the result
reads as text. Anything else is refused as binary or undecodable, with a one-line reason.

The Windows-1252 rule stays hand-written, before the detector, because charset-normalizer
mis-detects short Western text (measured: "café crème" in Latin-1 comes back as cp1006,
'He said “hello” – it cost €5.' in cp1252 as cp850 mojibake).
"""

from __future__ import annotations

import re

from qa.ingest.base import Unsupported, newlines

# Byte-order marks, longest first (a UTF-32 LE mark begins like a UTF-16 LE one).
_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32", "UTF-32"),
    (b"\xff\xfe\x00\x00", "utf-32", "UTF-32"),
    (b"\xef\xbb\xbf", "utf-8-sig", "UTF-8"),
    (b"\xff\xfe", "utf-16", "UTF-16"),
    (b"\xfe\xff", "utf-16", "UTF-16"),
)
# C0 control characters that never occur in text (tab, newlines, form feed are fine).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_NUL = re.compile("\x00")
LEGACY_MAX_NON_ASCII = 0.3  # Latin-1 prose is mostly ASCII letters with some accents
_WIDE = ("utf_16", "utf_32")  # charset-normalizer's names start so for UTF-16/32 (any order)


def decode(data: bytes) -> str:
    """Text from bytes (see the module docstring); raises `Unsupported` with the reason."""
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise Unsupported(
                    f"not {name} text (invalid data after its byte-order mark)"
                ) from exc
            if (_CONTROL if codec != "utf-8-sig" else _NUL).search(text):
                raise Unsupported(f"not {name} text (binary data)")
            return newlines(text)
    wide = b"\x00" in data  # NUL bytes: UTF-16/32 text or binary data, never 8-bit text
    if not wide:
        try:
            return newlines(data.decode("utf-8"))
        except UnicodeDecodeError:
            pass
        text = data.decode("utf-8", errors="replace")
        damaged = text.count("\ufffd")
        if _non_ascii(text) - damaged > damaged:  # mostly valid non-ASCII UTF-8: damaged UTF-8
            return newlines(text)
        legacy = _western(data)
        if legacy is not None:
            return newlines(legacy)
    detected = _detect(data, wide)
    if detected is not None:
        return newlines(detected)
    if wide:
        raise Unsupported("not UTF-8 text (binary data)")
    raise Unsupported("not UTF-8 text (invalid UTF-8, and no other encoding reads it as text)")


def _western(data: bytes) -> str | None:
    """`data` as Windows-1252 (a superset of Latin-1's printable characters), if it reads
    as text: no control characters, mostly ASCII."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:  # bytes cp1252 leaves undefined: C1 controls, not text
        return None
    if _CONTROL.search(text) or _non_ascii(text) > LEGACY_MAX_NON_ASCII * len(text):
        return None
    return text


def _detect(data: bytes, wide: bool) -> str | None:
    """charset-normalizer's best reading of `data` that is text: a UTF-16/32 one if `data`
    has NUL bytes, else an 8-bit or multibyte code page; None if there is none."""
    from charset_normalizer import from_bytes

    matches = [m for m in from_bytes(data) if m.encoding.startswith(_WIDE) == wide]
    readings = [(m.chaos, t) for m in matches if not _CONTROL.search(t := str(m))]
    if not readings:
        return None
    if wide:  # equally clean UTF-16 LE and BE readings: the one whose ASCII stays ASCII
        return min(readings, key=lambda r: (r[0], -_ascii(r[1])))[1]
    return readings[0][1]  # charset-normalizer's own order: least chaos, then language fit


def _non_ascii(text: str) -> int:
    return len(text) - _ascii(text)


def _ascii(text: str) -> int:
    return len(text.encode("ascii", "ignore"))
