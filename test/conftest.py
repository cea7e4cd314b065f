"""Shared fixtures: the real recordings beside the project, skipped with a reason when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """`../shared/data/real` next to the checkout; a user's fresh clone has none, so skip."""
    if not REAL_DATA_DIR.is_dir():
        pytest.skip(f"real recordings not found at {REAL_DATA_DIR} (only beside the team checkout)")
    return REAL_DATA_DIR
