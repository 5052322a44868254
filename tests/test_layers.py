"""The package's shape: no import cycle between modules (type-only and deferred imports count too), and
layers that point down (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import activity_feed

PACKAGE = Path(activity_feed.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of the package, and the package's modules it imports anywhere in its code."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base])
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for target in targets:
                # `from package import module` names a module; `from module import name` does not.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(f"{target}."):
                    found.add(target)
        graph[name] = found
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_no_module_imports_itself_through_others() -> None:
    cycle = _cycle(_imports())
    assert cycle is None, " -> ".join(cycle or [])


def _layer_imports(layer: str) -> set[str]:
    graph = _imports()
    return {
        target
        for name, targets in graph.items()
        if name.startswith(f"activity_feed.{layer}")
        for target in targets
    }


def test_middleware_does_not_reach_into_the_store() -> None:
    assert not {t for t in _layer_imports("middleware") if t.startswith("activity_feed.store")}


def test_the_store_and_the_client_do_not_read_the_services_settings() -> None:
    for layer in ("store", "client"):
        assert "activity_feed.settings" not in _layer_imports(layer), layer


def test_the_store_and_the_hub_know_nothing_of_http() -> None:
    for layer in ("store", "hub"):
        assert not {t for t in _layer_imports(layer) if t.startswith("activity_feed.api")}, layer


def test_the_feeds_mcp_tools_read_it_over_its_api_only() -> None:
    # They read through FeedReader, remote or in process: the service mounts them, never the reverse.
    reached = _layer_imports("feed_mcp")
    assert not {t for t in reached if t.startswith(("activity_feed.api", "activity_feed.store"))}
    assert "activity_feed.settings" not in reached
