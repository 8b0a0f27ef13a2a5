"""The package's shape (docs/architecture.md): one package per stage, one module per job.

- No import cycles between modules, counting imports inside functions too (a cycle hidden
  in a function is still a cycle), and none between the stage packages either: data flows
  one way, from the clinic data to the providers.
- No module over 400 lines unless it says why here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "reminders"
# Lines as `ruff format` writes them (it spreads long calls over several lines: the 400 of
# the compact style this limit started with became about 500).
MAX_LINES = 500
# Modules allowed to be longer, and why.
LONG_MODULES: dict[str, str] = {
    "reminders.web.staff.templates": "the template editor's pages (list, edit, preview, save, "
    "history, diff, revert, test send) share the draft and check helpers; history, diff and "
    "revert are the part to move out next",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}


def imports_of(path: Path, known: set[str], *, name: str | None = None) -> set[str]:
    """The project modules ``path`` (module ``name``) imports, anywhere in it but under
    ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_checking = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for child in block.body
        for node in ast.walk(child)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from reminders.x import y``: y is a module of package x, or a name in module x.
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != "reminders":
                found.add(target)
    found.discard(name or module_name(path))
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    # ``import reminders.x.y`` also runs package x's ``__init__``; those are empty but for
    # ``reminders.cli``'s, which only its own command modules import from (never each other's
    # package), so the edges above are the ones that matter.
    return {name: imports_of(path, known) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def stage(module: str) -> str:
    """``reminders.dispatch.checks`` -> ``reminders.dispatch``; top-level modules are their own."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_import_cycle_between_modules() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycle_between_stage_packages() -> None:
    packages: dict[str, set[str]] = defaultdict(set)
    for source, targets in import_graph().items():
        packages[stage(source)] |= {stage(t) for t in targets if stage(t) != stage(source)}
    cycle = find_cycle(packages)
    assert cycle is None, "packages import each other: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_imports_inside_functions_count(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from reminders.cli.common import parse_instant\n")
    assert imports_of(source, {"reminders.cli", "reminders.cli.common"}, name="m") == {
        "reminders.cli.common"
    }


def test_no_module_is_too_long_without_a_reason() -> None:
    long = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in modules().items()
        if len(path.read_text(encoding="utf-8").splitlines()) > MAX_LINES
    }
    unexplained = {name: lines for name, lines in long.items() if name not in LONG_MODULES}
    assert not unexplained, (
        f"modules over {MAX_LINES} lines (split them, or say why in LONG_MODULES): {unexplained}"
    )
    stale = set(LONG_MODULES) - set(long)
    assert not stale, f"LONG_MODULES names modules that are short now: {stale}"
