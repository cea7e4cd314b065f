"""How long offline work reports its progress: `progress(label, done, total)`, drawn by the caller."""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, int, int], None]
