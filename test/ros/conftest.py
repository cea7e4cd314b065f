"""In-process ROS fixtures: every test gets its own DDS domain, kept on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (run the tests through ./dev test)")
from rclpy.context import Context  # noqa: E402
from ros_helpers import REPO  # noqa: E402


@pytest.fixture
def domain_id(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """A domain per test (20-99), also exported for the subprocesses the test starts."""
    did = 20 + zlib.crc32(request.node.nodeid.encode()) % 80
    monkeypatch.setenv("ROS_DOMAIN_ID", str(did))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_LOCALHOST_ONLY", "1")
    return did


@pytest.fixture
def context(domain_id: int) -> Iterator[Context]:
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
            cwd=REPO,
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
