"""Machine facts recorded with every benchmark run, so numbers from different machines (or a busy
one) are never compared blind."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Hardware", "Processor"):
            return value.strip()
    return platform.processor() or "unknown"


def os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def memory_total_mb() -> float | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024.0
    return None


def distribution_version(module: str) -> str | None:
    """Version of the installed distribution(s) providing `module` (the ROS wheels ship several)."""
    try:
        dists = importlib.metadata.packages_distributions().get(module, [])
    except Exception:  # a broken metadata entry must not stop a benchmark run
        return None
    versions = []
    for d in sorted(set(dists)):
        try:
            versions.append(f"{d} {importlib.metadata.version(d)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(versions) or None


def git_revision() -> str | None:
    """HEAD, with `+dirty` when the checkout has changes: results belong to a code state."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def load() -> dict[str, float]:
    """Load averages: on a shared machine they say how much of it the benchmark really had."""
    one, five, fifteen = os.getloadavg()
    return {"1min": one, "5min": five, "15min": fifteen}


def machine_facts() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_model": cpu_model(),
        "memory_total_mb": memory_total_mb(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "rclpy": distribution_version("rclpy"),
        "numpy": distribution_version("numpy"),
        "opencv": distribution_version("cv2"),
        "rmw_implementation": os.environ.get("RMW_IMPLEMENTATION"),
        "os": os_name(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "git": git_revision(),
        "load_at_start": load(),
    }
