"""colcon builds the package, and the installed `monitor` entry point runs and stops cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from ros_helpers import REPO, spin_until

from gap_monitor.ros import runtime

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    colcon = shutil.which("colcon") or str(Path(sys.executable).with_name("colcon"))
    if not Path(colcon).exists():
        pytest.skip("colcon is not installed (./dev test installs colcon-common-extensions)")
    work = tmp_path_factory.mktemp("colcon")
    # Build a copy of the sources, as a fresh workspace would, so nothing lands in the checkout.
    src = work / "src" / "gap_monitor"
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "install", "log", "*.egg-info", "__pycache__", ".*cache"
        ),
    )
    result = subprocess.run(
        [
            colcon,
            "build",
            "--base-paths",
            str(work / "src"),
            "--build-base",
            str(work / "build"),
            "--install-base",
            str(work / "install"),
            "--event-handlers",
            "console_direct-",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return work / "install" / "gap_monitor"


def test_colcon_installs_share_files_and_executables(colcon_install):
    share = colcon_install / "share" / "gap_monitor"
    for rel in (
        "package.xml",
        "launch/monitor.launch.py",
        "config/monitor.yaml",
        "config/scenarios/demo.yaml",
    ):
        assert (share / rel).is_file(), rel
    assert (
        colcon_install / "share" / "ament_index" / "resource_index" / "packages" / "gap_monitor"
    ).is_file()
    for exe in ("monitor", "sim", "gap-monitor"):
        assert os.access(colcon_install / "lib" / "gap_monitor" / exe, os.X_OK), exe


def test_installed_monitor_publishes_diagnostics_and_exits_on_sigterm(colcon_install, context, tmp_path):
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    env["AMENT_PREFIX_PATH"] = os.pathsep.join([str(colcon_install), env.get("AMENT_PREFIX_PATH", "")])
    params = colcon_install / "share" / "gap_monitor" / "config" / "monitor.yaml"
    # Run it with the venv's interpreter, from outside the checkout, so the installed copy is what runs.
    proc = subprocess.Popen(
        [
            sys.executable,
            str(colcon_install / "lib" / "gap_monitor" / "monitor"),
            "--ros-args",
            "--params-file",
            str(params),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        listener = Node("packaging_listener", context=context)
        received: list[DiagnosticArray] = []
        listener.create_subscription(DiagnosticArray, "/diagnostics", received.append, 10)
        executor = runtime.make_executor(context)
        executor.add_node(listener)
        assert spin_until(executor, lambda: bool(received), 30.0), (
            "no /diagnostics from the installed monitor"
        )
        names = {s.name for s in received[-1].status}
        assert "gap_monitor: /camera/color/image_raw" in names
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, out
        assert "shutting down" in out
        assert "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
