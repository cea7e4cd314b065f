"""Scripted faults for the simulated sensor rig: what goes wrong, on which stream, and when.

A scenario is YAML:

    name: stall_then_dark
    duration_s: 30
    seed: 7
    faults:
      - {kind: stall, stream: depth, start_s: 6, duration_s: 3}
      - {kind: lighting_gain, stream: camera, start_s: 14, duration_s: 8, gain: 0.3}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gap_monitor.core.config import Checker, ConfigError

SIM_STREAMS = ("camera", "depth", "imu", "joints", "wrench")

# Fault kind -> (streams it applies to, {parameter: (default, low, high)}).
FAULT_KINDS: dict[str, tuple[tuple[str, ...], dict[str, tuple[float, float, float]]]] = {
    "lighting_gain": (("camera",), {"gain": (0.3, 0.0, 100.0)}),
    "blur": (("camera",), {"sigma_px": (4.0, 0.0, 100.0)}),
    "depth_dropout": (("depth",), {"fraction": (0.5, 0.0, 1.0)}),
    "imu_noise": (("imu",), {"scale": (3.0, 0.0, 1000.0)}),
    "imu_bias": (("imu",), {"gyro_rad_s": (0.05, -100.0, 100.0), "accel_m_s2": (0.0, -1000.0, 1000.0)}),
    "joint_out_of_range": (("joints",), {"joint": (0.0, -1.0, 63.0), "offset_rad": (1.0, -10.0, 10.0)}),
    "force_drift": (("wrench",), {"rate_n_per_s": (2.0, -1000.0, 1000.0)}),
    "stamp_offset": (SIM_STREAMS, {"offset_ms": (10.0, -10_000.0, 10_000.0)}),
    "stall": (SIM_STREAMS, {}),
    "burst": (SIM_STREAMS, {"factor": (3.0, 1.0, 100.0)}),
}


@dataclass(frozen=True)
class Fault:
    kind: str
    stream: str
    start_s: float
    duration_s: float
    params: dict[str, float] = field(default_factory=dict)

    def active(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.start_s + self.duration_s

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class Scenario:
    name: str = "clean"
    duration_s: float = 30.0
    seed: int = 0
    faults: tuple[Fault, ...] = ()

    def active(self, stream: str, t_s: float) -> list[Fault]:
        return [f for f in self.faults if f.stream == stream and f.active(t_s)]


def scenario_from_mapping(doc: Mapping[str, Any], source: str = "scenario") -> Scenario:
    chk = Checker()
    chk.unknown_keys(doc, "", {"name", "duration_s", "seed", "faults", "description"})
    name = doc.get("name", Path(source).stem)
    duration = chk.number(doc, "duration_s", "", 30.0, low=0.0, high=86_400.0)
    seed = chk.integer(doc, "seed", "", 0, low=0, high=2**31 - 1)
    raw_faults = doc.get("faults", [])
    if not isinstance(raw_faults, list):
        chk.problem("faults", raw_faults, "a list of faults")
        raw_faults = []
    faults = []
    for i, raw in enumerate(raw_faults):
        path = f"faults[{i}]"
        if not isinstance(raw, Mapping):
            chk.problem(path, raw, "a mapping with kind, stream, start_s, duration_s")
            continue
        kind = raw.get("kind")
        if kind not in FAULT_KINDS:
            chk.problem(f"{path}.kind", kind, f"one of {', '.join(FAULT_KINDS)}")
            continue
        streams, params = FAULT_KINDS[kind]
        chk.unknown_keys(raw, path, {"kind", "stream", "start_s", "duration_s", *params})
        stream = chk.choice(raw, "stream", path, streams[0], streams)
        start = chk.number(raw, "start_s", path, 0.0, low=0.0, high=86_400.0, low_inclusive=True)
        length = chk.number(raw, "duration_s", path, 1.0, low=0.0, high=86_400.0)
        values = {
            key: chk.number(raw, key, path, default, low=low, high=high, low_inclusive=True)
            for key, (default, low, high) in params.items()
        }
        faults.append(Fault(str(kind), stream, start, length, values))
    if chk.problems:
        raise ConfigError(chk.problems, source)
    return Scenario(name=str(name), duration_s=duration, seed=seed, faults=tuple(faults))


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{p}: cannot read a scenario: {exc}"], str(p)) from exc
    if not isinstance(doc, Mapping):
        raise ConfigError([f"<top level>: {doc!r}: a mapping with name, duration_s, faults"], str(p))
    return scenario_from_mapping(doc, str(p))


def scenarios_dir() -> Path:
    """The shipped scenarios: installed share/ when the ament index knows the package, else the
    source tree."""
    from gap_monitor.launching import share_dir

    return share_dir() / "config" / "scenarios"


def resolve_scenario(name_or_path: str | None) -> Scenario:
    """A scenario YAML path, or the name of one in config/scenarios/ ("clean" when empty).

    Raises ConfigError for a missing or invalid scenario."""
    if not name_or_path:
        return Scenario(name="clean")
    path = Path(name_or_path)
    if not path.exists() and not path.suffix:
        path = scenarios_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in scenarios_dir().glob("*.yaml"))
        raise ConfigError(
            [f"scenario {name_or_path!r}: no such file or shipped scenario (shipped: {', '.join(known)})"],
            str(name_or_path),
        )
    return load_scenario(path)
