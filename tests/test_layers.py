"""The layers of `src/headbayes` (docs/architecture.md): every import of a headbayes module,
at module level or inside a function, points to the same layer or one below, no modules import
each other in a circle, and only the top layer (`app`, whose start-up must stay light) imports
headbayes modules inside functions."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# bottom to top; a module may import its own layer and the layers before it
LAYERS = ("core", "datasets", "models", "posterior", "analysis", "samplers", "config", "engine",
          "job", "report", "app")


def module_files() -> dict[str, Path]:
    """{dotted name: file} of every module under src/headbayes (a package by its name)."""
    out = {}
    for path in (SRC / "headbayes").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = module_files()


def imported(name: str, path: Path) -> set[str]:
    """The headbayes modules `name` imports anywhere in its file (`from P import m` counts
    as an import of P.m when m is a module, else of P)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "headbayes"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                stem = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(stem + ([base] if base else []))
            if base.split(".")[0] != "headbayes":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imported(name, path) for name, path in MODULES.items()}


def layer(name: str) -> int:
    """The layer of a module; `headbayes` itself and `headbayes.__main__` are above all."""
    parts = name.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


def in_function(path: Path) -> list[int]:
    """Line numbers of imports of headbayes modules inside functions of the file."""
    lines = []
    for fn in ast.walk(ast.parse(path.read_text())):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                         else [a.name for a in node.names] if isinstance(node, ast.Import)
                         else [])
                if any(n.split(".")[0] == "headbayes" for n in names):
                    lines.append(node.lineno)
    return sorted(set(lines))


def test_only_the_top_layer_imports_headbayes_inside_functions():
    found = {name: in_function(path) for name, path in MODULES.items()
             if layer(name) < LAYERS.index("app")}
    assert {name: lines for name, lines in found.items() if lines} == {}


def test_every_module_sits_in_a_layer():
    loose = [n for n in MODULES if layer(n) == len(LAYERS)
             and n not in ("headbayes", "headbayes.__main__")
             and not n.startswith("headbayes.configs")]
    assert loose == []


def test_no_import_points_up_a_layer():
    upward = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                    if layer(b) > layer(a))
    assert upward == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_circle():
    assert cycles(GRAPH) == []


def test_the_scan_sees_a_circle_and_an_upward_import():
    """The checks above can fail: a made-up graph with both faults."""
    graph = {"headbayes.core.a": {"headbayes.app.b"}, "headbayes.app.b": {"headbayes.core.a"}}
    assert cycles(graph) == [["headbayes.app.b", "headbayes.core.a"]]
    assert layer("headbayes.app.b") > layer("headbayes.core.a")
