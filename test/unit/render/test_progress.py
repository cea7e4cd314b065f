"""The progress bar the long reads of recordings draw on stderr."""

from __future__ import annotations

import io

from gap_monitor.render.progress import ProgressBar


def test_bar_draws_only_when_enabled() -> None:
    drawn = io.StringIO()
    bar = ProgressBar(drawn, enabled=True, interval_s=0.0)
    bar("bag", 30, 120)
    bar("bag", 120, 120)
    assert "30/120" in drawn.getvalue() and drawn.getvalue().endswith("120/120 msgs\n")
    quiet = io.StringIO()  # not a terminal: no bar unless asked for
    ProgressBar(quiet)("bag", 30, 120)
    assert quiet.getvalue() == ""
