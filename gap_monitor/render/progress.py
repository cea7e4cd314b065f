"""A one-line progress bar for long reads of recordings (audit, profile build, report)."""

from __future__ import annotations

import math
import time
from typing import TextIO


class ProgressBar:
    """`label [#####-----]  45 %  12345/29310 msgs` on one line, redrawn at most every `interval_s`.

    `enabled=None` draws only when the stream is a terminal.
    """

    def __init__(
        self, stream: TextIO, enabled: bool | None = None, interval_s: float = 0.2, width: int = 30
    ) -> None:
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.interval_s = interval_s
        self.width = width
        self._last_draw = -math.inf
        self._open_line = False

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        finished = total > 0 and done >= total
        now = time.monotonic()
        if not finished and now - self._last_draw < self.interval_s:
            return
        self._last_draw = now
        frac = min(1.0, done / total) if total > 0 else 1.0
        filled = round(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{label} [{bar}] {frac * 100:3.0f} % {done}/{total} msgs")
        self._open_line = True
        if finished:
            self.stream.write("\n")
            self._open_line = False
        self.stream.flush()

    def close(self) -> None:
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False
