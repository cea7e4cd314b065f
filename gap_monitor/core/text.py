"""Text from other nodes made safe for a log line, an event reason and JSON.

A failure message or another node's diagnostic status can hold anything: bytes that are not UTF-8,
newlines that forge log lines, ESC sequences that repaint a terminal. Such text is decoded
leniently (`errors="surrogateescape"`: each undecodable byte becomes a lone surrogate
U+DC80..U+DCFF, so nothing is lost) and shown through one escape table, in two forms:

- `printable(text, limit)`: log lines and event reasons. C0 controls, DEL, C1 controls, line and
  paragraph separators, bidi overrides and undecodable bytes become visible escapes (`\\n`, `\\x1b`,
  `\\xff`, `\\u2028`), so one event is one log line. Escaping twice changes nothing.
- `escaped(text)`: event details and trigger.json. The same escapes plus `\\\\` for a backslash, so
  the form is unambiguous and `unescape` gives back the exact bytes received.

`\\xNN` always stands for one byte of the UTF-8 text (an ASCII control or an undecodable byte),
`\\uNNNN` for a code point whose UTF-8 form is several bytes (a C1 control, a separator).
"""

from __future__ import annotations

import re

__all__ = ["escaped", "printable", "unescape"]

_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[{_CONTROLS}]")
_UNSAFE_OR_BACKSLASH = re.compile(f"[\\\\{_CONTROLS}]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_ESCAPE_LENGTH = {"x": 4, "u": 6}  # `\xNN`, `\uNNNN`; the short ones are 2
_ESCAPE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|(.))", re.DOTALL)
_UNSHORT = {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code < 0x80:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as surrogateescape carries it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def printable(text: str, limit: int | None = None) -> str:
    """`text` with control characters and undecodable bytes as visible escapes, on one line;
    at most `limit` characters (clipped with "…", never inside an escape)."""
    clipped = limit is not None and len(text) > limit
    if clipped:
        text = text[:limit]  # every character gives at least one: enough for `limit`
    out = _UNSAFE.sub(_escape, text)
    if limit is None or (not clipped and len(out) <= limit):
        return out
    cut = out[: max(limit - 1, 0)]
    mark = cut.rfind("\\", max(len(cut) - 5, 0))
    if mark >= 0 and mark + _ESCAPE_LENGTH.get(out[mark + 1 : mark + 2], 2) > len(cut):
        cut = cut[:mark]
    return cut + "…"


def escaped(text: str) -> str:
    """`text` as `printable` shows it, with backslashes doubled: `unescape` gives its bytes back."""
    return _UNSAFE_OR_BACKSLASH.sub(_escape, text)


def unescape(text: str) -> bytes:
    """The bytes that `escaped` text stands for (the UTF-8 encoding of the original text, with
    undecodable bytes as they were received). ValueError for an escape `escaped` never writes."""
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(text):
        out += text[pos : match.start()].encode("utf-8")
        byte, code, short = match.groups()
        if byte is not None:
            out.append(int(byte, 16))
        elif code is not None:
            out += chr(int(code, 16)).encode("utf-8", "surrogatepass")
        elif short in _UNSHORT:
            out += _UNSHORT[short]
        else:
            raise ValueError(f"not an escape of gap_monitor.core.text: {match.group()!r}")
        pos = match.end()
    return bytes(out + text[pos:].encode("utf-8"))
