"""The package's architecture, checked from its source: imports run one way (commands -> offline,
ros, render, sim -> core -> nothing of ours above it), no import cycle, no ROS code outside ros/,
package `__init__`s only re-export (with `__all__`), and no module grows past a reviewable size."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gap_monitor"
MAX_LINES = 850
ROS_MODULES = (
    "rclpy", "launch", "launch_ros", "rosidl_runtime_py", "ament_index_python", "std_msgs", "std_srvs",
    "sensor_msgs", "geometry_msgs", "diagnostic_msgs", "action_msgs", "builtin_interfaces",
    "rcl_interfaces", "rosgraph_msgs",
)  # fmt: skip
# What each layer may import from the package (besides itself and gap_monitor.errors).
ALLOWED = {
    "core": ("core",),
    "offline": ("core", "offline"),
    "render": ("core", "offline", "render"),
    "sim": ("core", "sim", "launching"),
    "ros": ("core", "offline", "render", "sim", "ros", "launching"),
    "commands": ("core", "offline", "render", "sim", "ros", "commands", "launching"),
    "cli": ("commands", "launching"),
    "launching": (),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> list[str]:
    """Modules a file imports (at any depth), except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base])
            found.append(base)
            found.extend(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def own(name: str, known: dict[str, Path]) -> str | None:
    """The package module `name` refers to (a name imported from a module is that module)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "gap_monitor"


def test_imports_run_one_way_and_ros_stays_in_ros() -> None:
    known = modules()
    wrong = []
    for name, path in known.items():
        here = layer(name)
        for target in imports(path):
            top = target.split(".")[0]
            # launching finds the installed share/ through ament_index (pure Python, no rclpy).
            ament_for_launching = here == "launching" and top == "ament_index_python"
            if top in ROS_MODULES and here != "ros" and not ament_for_launching:
                wrong.append(f"{name} imports {target} (ROS code belongs in gap_monitor.ros)")
            module = own(target, known)
            if module is None or module in ("gap_monitor", "gap_monitor.errors"):
                continue
            there = layer(module)
            if here in ALLOWED and there != here and there not in ALLOWED[here]:
                wrong.append(f"{name} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle() -> None:
    known = modules()
    graph = {
        name: {m for t in imports(path) if (m := own(t, known)) and m != name and m != "gap_monitor"}
        for name, path in known.items()
    }
    # A package imports its re-exported modules; their imports of the package's siblings are no
    # cycle through the package itself.
    for name, path in known.items():
        if path.name == "__init__.py":
            for other in graph:
                if other.startswith(f"{name}."):
                    graph[other].discard(name)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                walk(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("__init__.py")), ids=lambda p: module_name(p))
def test_package_init_only_re_exports(path: Path) -> None:
    tree = ast.parse(path.read_text())
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    names = [t.id for n in body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)]
    others = [n for n in body if not isinstance(n, (ast.Import, ast.ImportFrom, ast.Assign))]
    imported = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body)
    allowed = [["__all__"], ["__version__", "__all__"]] if imported else [[], ["__version__"]]
    assert names in allowed, f"{path}: assigns {names} (a package re-exporting names lists them in __all__)"
    assert not others, f"{path}: holds code, not only re-exports: {[ast.unparse(n)[:60] for n in others]}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: module_name(p))
def test_modules_stay_reviewable(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module_name(path)}: {lines} lines; split it by concept"
