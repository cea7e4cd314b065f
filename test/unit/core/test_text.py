"""The one sanitizer for text from other nodes: visible escapes, one line, the bytes recoverable."""

from __future__ import annotations

import re

import pytest

from gap_monitor.core.text import escaped, printable, unescape

RAW = b"ok \xff\xfe\n[ERROR] FAKE \x1b[31m\\x41 \xc2\x85 \xe2\x80\xa8 \xe2\x80\xae caf\xc3\xa9\x7f\t\r\x00"
TEXT = RAW.decode("utf-8", "surrogateescape")


def test_every_control_character_and_undecodable_byte_becomes_a_visible_escape() -> None:
    controls = [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, 0x202E, 0x2066]
    for code in controls:
        shown = printable(f"a{chr(code)}b")
        assert shown.isprintable() and shown.startswith("a\\") and shown.endswith("b"), (code, shown)
    assert printable("\n\r\t\x1b\x7f") == "\\n\\r\\t\\x1b\\x7f"
    assert printable("\x85\u2028") == "\\u0085\\u2028"
    assert printable(b"\xff".decode("utf-8", "surrogateescape")) == "\\xff"
    assert printable("café ünïcode ✓ \\ plain") == "café ünïcode ✓ \\ plain"


def test_printable_is_one_line_and_idempotent() -> None:
    shown = printable(TEXT)
    assert shown.isprintable() and len(shown.splitlines()) == 1
    assert printable(shown) == shown


@pytest.mark.parametrize("limit", range(1, 60))
def test_printable_clips_to_the_limit_never_inside_an_escape(limit: int) -> None:
    shown = printable(TEXT, limit)
    full = printable(TEXT)
    assert len(shown) <= limit and shown.isprintable()
    assert shown.endswith("…") and full.startswith(shown[:-1])
    assert re.search(r"\\(x[0-9a-f]?|u[0-9a-f]{0,3})?$", shown[:-1]) is None  # no half escape
    assert printable(shown, limit) == shown


def test_escaped_text_gives_back_the_exact_bytes() -> None:
    assert escaped(TEXT).isprintable()
    assert unescape(escaped(TEXT)) == RAW
    for raw in (b"", b"\\", b"\\\\x41", b"\\n", b"plain", bytes(range(256))):
        assert unescape(escaped(raw.decode("utf-8", "surrogateescape"))) == raw
    assert escaped("plain text") == "plain text"
    with pytest.raises(ValueError, match="not an escape"):
        unescape("\\q")
