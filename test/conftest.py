"""Shared fixtures: the real recordings beside the project, and per-test ROS domains."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gap_monitor.launching import local_discovery

pytest_plugins = ["offline_fixtures"]  # the offline, render and command tests' recordings

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """`../shared/data/real` next to the checkout; a user's fresh clone has none, so skip."""
    if not REAL_DATA_DIR.is_dir():
        pytest.skip(f"real recordings not found at {REAL_DATA_DIR} (only beside the team checkout)")
    return REAL_DATA_DIR


@pytest.fixture
def domain_id(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """A DDS domain per test (20-99), also exported to the subprocesses the test starts; local only."""
    did = 20 + zlib.crc32(request.node.nodeid.encode()) % 80
    monkeypatch.setenv("ROS_DOMAIN_ID", str(did))
    for name, value in local_discovery(os.environ).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return did


@pytest.fixture
def context(domain_id: int) -> Iterator[Any]:
    """An rclpy context of its own, in the test's domain."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (run the tests through ./dev test)")
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    try:
        yield ctx
    finally:
        if ctx.ok():
            rclpy.shutdown(context=ctx)


@pytest.fixture
def spawn(domain_id: int, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `python -m module args...` in the test's domain; stopped (SIGTERM, then kill) at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(module: str, *args: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{module.rsplit('.', 1)[-1]}-{len(procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=dict(os.environ),
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
