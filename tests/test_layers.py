"""The import graph of the package: no cycle, and no stage importing a stage above its own.

The layers are the map of docs/design.md: a module imports only modules of
lower layers (its own package's modules aside). Every ``import`` counts, also
inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pressreview"

#: Lowest first. A unit is a top-level module or sub-package of pressreview.
LAYERS: list[set[str]] = [
    {"pressreview", "errors", "text", "process", "frdates", "model"},
    {"geo"},
    {"config", "tokens", "typography"},
    {"urls", "templating", "store", "places"},
    {"agenda", "contract", "contracts"},
    {"collect", "opml", "render"},
    {"pageinfo", "issues", "subscribers", "archive"},
    {"curate"},
    {"deliver"},
    {"signup"},
    {"preview", "web", "scheduling"},
    {"demo"},
    {"cli"},
    {"__main__"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "pressreview"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:  # `from pressreview.cli import display`: a module
                    submodule = f"{node.module}.{alias.name}"
                    is_module = (PACKAGE.parent / (submodule.replace(".", "/") + ".py")).exists()
                    targets.add(submodule if is_module else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[_module_name(path)] = {t for t in targets if t.split(".")[0] == "pressreview"}
    return graph


def test_every_unit_has_a_layer() -> None:
    units = {_unit(m) for m in _imports()}
    assert units <= set(RANK), f"add to LAYERS: {sorted(units - set(RANK))}"


def test_no_upward_import() -> None:
    upward = [
        f"{module} imports {target}"
        for module, targets in _imports().items()
        for target in targets
        if _unit(module) != _unit(target) and RANK[_unit(target)] >= RANK[_unit(module)]
    ]
    assert upward == []


def test_named_stages_do_not_import_delivery() -> None:
    for module, targets in _imports().items():
        if _unit(module) in ("collect", "archive", "issues", "subscribers", "render"):
            assert not any(_unit(t) == "deliver" for t in targets), module


def _assert_acyclic(graph: dict[str, set[str]]) -> None:
    done: set[str] = set()

    def visit(unit: str, path: list[str]) -> None:
        assert unit not in path, "import cycle: " + " -> ".join([*path, unit])
        if unit in done:
            return
        for target in sorted(graph.get(unit, ())):
            visit(target, [*path, unit])
        done.add(unit)

    for unit in sorted(graph):
        visit(unit, [])


def test_no_import_cycle_between_units() -> None:
    graph: dict[str, set[str]] = {}
    for module, targets in _imports().items():
        graph.setdefault(_unit(module), set()).update(
            _unit(t) for t in targets if _unit(t) != _unit(module)
        )
    _assert_acyclic(graph)


def test_no_import_cycle_between_modules() -> None:
    graph = _imports()
    _assert_acyclic(
        {m: {t for t in targets if t in graph and t != m} for m, targets in graph.items()}
    )
