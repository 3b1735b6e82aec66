"""The shape of apps/: no import cycles, and services share code only through apps.core.

Read from the source with :mod:`ast` (nothing is imported), counting every import,
including those under ``TYPE_CHECKING`` and inside functions: a cycle that only a lazy
import hides is still a cycle for the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

APPS = Path(__file__).resolve().parents[2] / "apps"
SERVICES = {"api", "router", "brokers", "ledger", "notifier"}
# The API checks broker credentials with the broker kind's own client before it stores
# them; that client is the one exception to "services share only apps.core".
ALLOWED = {("apps.api.brokers.verification", "apps.brokers.deriv")}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in APPS.rglob("*.py"):
        parts = list(path.relative_to(APPS.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(resolve(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                targets.update(resolve(f"{base}.{alias.name}") for alias in node.names)
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _service(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_no_module_of_apps_is_part_of_an_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_a_service_imports_no_other_services_package() -> None:
    crossing = sorted(
        (source, target)
        for source, targets in _graph().items()
        for target in targets
        if _service(source) in SERVICES
        and _service(target) in SERVICES
        and _service(source) != _service(target)
        and not any(source == a and target.startswith(b) for a, b in ALLOWED)
    )
    assert crossing == []


def test_core_imports_no_service() -> None:
    crossing = sorted(
        (source, target)
        for source, targets in _graph().items()
        for target in targets
        if _service(source) == "core" and _service(target) in SERVICES
    )
    assert crossing == []
