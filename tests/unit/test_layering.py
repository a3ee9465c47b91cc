"""Guards on the package's shape: no import cycle inside `playground/`, no gradio outside `playground/ui/`.

The import graph is read from the source (the AST of every module), so an import inside a function,
the usual way to hide a cycle from Python, counts like one at the top of a file; imports under
`if TYPE_CHECKING:` never run and do not count. `from playground.html import chat` is an edge to
the module `playground.html.chat`; `from playground.errors import PlaygroundError` to
`playground.errors`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "playground"
UI = PACKAGE / "ui"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_nodes(tree: ast.AST):
    """Every Import / ImportFrom that can run: at any depth, except under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            children = node.orelse
        stack.extend(children)


def imported_names(name: str, path: Path, tree: ast.AST, known: set[str] = frozenset()) -> list[tuple[str, int]]:
    """(absolute dotted name, line) of everything `tree` imports. `from package import a, b` names
    the submodules `package.a`, `package.b` where those are in `known`, and `package` itself for
    any name that is not a submodule (then its __init__ is what is used)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in import_nodes(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - (node.level - 1)] + ([base] if base else []))
        submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
        if len(submodules) < len(node.names):
            found.append((base, node.lineno))
        found += [(target, node.lineno) for target in submodules]
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """{module: {imported playground module: line of the first such import}}."""
    known = modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in known.items():
        edges: dict[str, int] = {}
        for target, line in imported_names(name, path, ast.parse(path.read_text(), str(path)), set(known)):
            if target in known and target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_closed_path(graph, component) for component in components]


def _closed_path(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, for the message."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node]):
                if target == start:
                    return paths[node] + [start]
                if target in members and target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    return component


def describe(graph: dict[str, dict[str, int]], path: list[str]) -> str:
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(path, path[1:])) + f" -> {path[-1]}"


def test_the_graph_sees_function_level_imports(tmp_path):
    source = ("from playground import limits\nfrom playground.html import tokens, HOVER\n"
              "def f():\n    import playground.decoding\n"
              "if TYPE_CHECKING:\n    from playground import chat\n")
    path = tmp_path / "probe.py"
    names = imported_names("playground.probe", path, ast.parse(source),
                           {"playground.limits", "playground.html.tokens", "playground.decoding", "playground.chat"})
    assert sorted(names) == [("playground.decoding", 4), ("playground.html", 2), ("playground.html.tokens", 2),
                             ("playground.limits", 1)]
    assert "playground.html.tokens" in import_graph()["playground.html.chat"]
    assert cycles({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}) == [["a", "b", "c", "a"]]


def test_no_import_cycle_inside_the_package():
    graph = import_graph()
    found = cycles(graph)
    messages = [describe(graph, path) for path in found]
    assert not found, "import cycles inside playground/:\n" + "\n".join(messages)


def test_gradio_is_imported_only_under_playground_ui():
    offenders = []
    for name, path in modules().items():
        if path.is_relative_to(UI):
            continue
        for target, line in imported_names(name, path, ast.parse(path.read_text(), str(path))):
            if target.split(".")[0] in ("gradio", "gradio_client"):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not offenders, "gradio outside playground/ui/:\n" + "\n".join(sorted(set(offenders)))


MODEL_RUNNING = ("playground.decoding", "playground.model_call", "playground.batching", "playground.fastpath",
                 "playground.fused_llama")


def test_the_ui_renders_and_never_runs_a_model():
    """No module under playground/ui/ imports the layers that run models, nor calls load_model."""
    offenders = []
    graph = import_graph()
    for name, path in modules().items():
        if not path.is_relative_to(UI):
            continue
        offenders += [f"{path.relative_to(ROOT)}:{line} imports {target}"
                      for target, line in graph.get(name, {}).items() if target in MODEL_RUNNING]
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            if "load_model(" in text or "load_tokenizer(" in text:
                offenders.append(f"{path.relative_to(ROOT)}:{number} {text.strip()}")
    assert not offenders, "the UI runs models here:\n" + "\n".join(sorted(offenders))


# What asks "is this model an engine?": outside the backend layer (playground/engines/ and
# playground/backends.py, which builds a backend from a spec) no module may (issue 21.2).
ENGINE_CHECK = re.compile(r"""source\s*[!=]=\s*["']engine["']|\bsession\.engine\b|\bengine_lab\.|SimpleNamespace"""
                          r"""|\bcontender_?\.engine\b|["']engine["']\s+(?:not\s+)?in\b""")
BACKEND_LAYER = (PACKAGE / "engines", PACKAGE / "backends.py")


def engine_checks() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if any(path == layer or path.is_relative_to(layer) for layer in BACKEND_LAYER):
            continue
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            if ENGINE_CHECK.search(text.split("#", 1)[0]):
                found.append(f"{path.relative_to(ROOT)}:{number} {text.strip()}")
    return found


def test_no_module_outside_the_backend_layer_asks_whether_a_model_is_an_engine():
    checks = engine_checks()
    assert len(checks) == 0, ("these ask whether a model is an engine; ask its backend "
                              "(playground.backends.backend_for) instead:\n" + "\n".join(checks))


def test_the_engine_check_count_sees_a_check():
    assert ENGINE_CHECK.search('if spec.source == "engine":') and ENGINE_CHECK.search("session.engine")
    assert ENGINE_CHECK.search("engine_lab.engine_for(spec)") and ENGINE_CHECK.search("SimpleNamespace(x=1)")
    assert not ENGINE_CHECK.search("backend_for(spec).beam_search(prompt, settings)")
