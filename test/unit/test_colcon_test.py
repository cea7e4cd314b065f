"""`colcon test --packages-select gap_monitor` runs the suite: colcon picks its pytest step from the
test dependencies setup.py declares (checked here with colcon's own code, as colcon reads them)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_colcon_would_run_pytest_on_this_package():
    setup_py = pytest.importorskip(
        "colcon_python_setup_py.package_identification.python_setup_py",
        reason="colcon-python-setup-py is not installed (./dev installs colcon-common-extensions)",
    )
    from colcon_core.task.python.test import has_test_dependency

    data = setup_py.get_setup_information(REPO / "setup.py")
    assert has_test_dependency(data, "pytest"), "colcon test would run 0 tests"
