"""The architecture, checked from the source: one-way flow, no import circle, a room per concern."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search", "objectives")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """First-party modules ``path`` imports (inside functions too, and under TYPE_CHECKING: a circle
    through an annotation is a circle all the same).

    ``from a.b import c`` counts as importing ``a.b.c`` when that is a module, else ``a.b``.
    Strings in a package's lazy table (``"objectives._space": (...)``) count as imports.
    """
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in known
            and path.name == "__init__.py"
        ):
            found.add(node.value)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    first_party = set()
    for name in found:
        while name and name not in known:  # `import search.storages._open` -> that module
            name = name.rpartition(".")[0]
        if name:
            first_party.add(name)
    return first_party - {module_name(path)}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(path, set(found)) for name, path in found.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_no_import_circle(graph):
    # A package's __init__ that re-exports its modules is the package's face, not a circle:
    # its own modules may not import it back (they import their siblings directly).
    assert _cycles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_objectives_never_imports_search(graph):
    offenders = {
        m: sorted(i for i in deps if i.startswith("search")) for m, deps in graph.items() if m.startswith("objectives")
    }
    assert {m: d for m, d in offenders.items() if d} == {}


def test_data_models_and_the_training_loop_never_import_optuna():
    loop = ("objectives._train", "objectives._optim", "objectives._final", "objectives._tasks", "objectives._metrics")
    checked = [name for name in modules() if name.startswith(("objectives.data", "objectives.models")) or name in loop]
    assert len(checked) >= 10
    offenders = []
    for name in checked:
        tree = ast.parse(modules()[name].read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{name}: {n}" for n in names if n.split(".")[0] == "optuna"]
    assert offenders == []


def test_only_the_search_space_suggests():
    calls = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("suggest_"):
                calls.append(name)
    assert set(calls) == {"objectives._space"}


def test_no_module_is_a_house_of_its_own():
    """About 300 lines a module at most: a bigger one is two concerns in one room."""
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > 330} == {}


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff_finds_nothing(command):
    """The lint and the format of pyproject.toml's [tool.ruff]: `ruff format .` then `ruff check --fix .` mend most."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


# The command line: parsers, handlers and what only they print. Nothing else imports them (the package's
# face and `python -m search` aside), so the Python API and the workers run without a line of CLI code.
CLI_MODULES = {
    f"search.cli.{name}"
    for name in ("_cli", "_commands", "_model_commands", "_run_command", "_confirm_command", "_help", "_tracking_flags")
}


def test_nothing_but_the_command_line_imports_it(graph):
    outside = {
        module: sorted(deps & CLI_MODULES)
        for module, deps in graph.items()
        if module not in CLI_MODULES | {"search", "search.__main__"}
    }
    assert {module: deps for module, deps in outside.items() if deps} == {}


def test_search_is_grouped_by_layer():
    """A handful of modules at the top of `search/` (the face, the API, the errors, the Optuna adapter); the rest
    in a subpackage per layer, as Optuna's samplers/, storages/ and study/."""
    top = sorted(p.name for p in (ROOT / "search").glob("*.py"))
    assert len(top) <= 8, top
    assert {"cli", "study", "workers", "storages", "confirmation"} <= {p.name for p in (ROOT / "search").iterdir()}


# A command to type (`search confirm --study x`) may name flags in any message; an option on its own may not.
_COMMAND = r"search (run|confirm|train|export|predict|best|trials|studies|report|dashboard|space)\b[^;`)]*"


def _flags_outside_commands(source: str) -> list[tuple[int, str]]:
    import re

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            text = "".join(
                n.value for n in ast.walk(node.exc) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            )
            if re.search(r"--[a-z]", re.sub(_COMMAND, "", text)):
                found.append((node.lineno, text))
    return found


def test_the_core_names_options_by_their_python_names():
    """Only the command line spells an option as its flag (it maps `data_file` to --data): an error raised by the
    core names the field, so `search.tune` never says "--n-trials"."""
    core = [p for p in modules().values() if "cli" not in p.relative_to(ROOT).parts]
    named = {str(p.relative_to(ROOT)): found for p in core if (found := _flags_outside_commands(p.read_text()))}
    assert named == {}
    assert _flags_outside_commands('raise E(f"--data {p}: no such file")') and not _flags_outside_commands(
        'raise E("run search confirm --study x again; `data_file` is missing")'
    )
