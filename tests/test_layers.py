"""The house's layers, read from the source: no import circle, dependencies point down."""

import ast
import os

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bandit_tune")


def _module_name(path):
    rel = os.path.relpath(path, os.path.dirname(PACKAGE))[: -len(".py")].replace(os.sep, ".")
    return rel.removesuffix(".__init__")


def _graph():
    """Module -> the bandit_tune modules it imports (at the top or inside functions)."""
    modules = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                modules[_module_name(path)] = path
    graph = {}
    for module, path in modules.items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        edges = set()
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                # "from bandit_tune import searchers" imports the submodule
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != module and target.startswith("bandit_tune"):
                    edges.add(target)
        graph[module] = edges
    return graph


def _cycle(graph):
    """One import circle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt == "bandit_tune":
                continue  # the package's lazy facade re-exports everything; not a layer
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_circle():
    graph = _graph()
    assert len(graph) > 20  # the walk found the package
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_policies_import_nothing_outside_their_package():
    graph = _graph()
    for module, edges in graph.items():
        if module.startswith("bandit_tune.policies"):
            outside = {e for e in edges if not e.startswith("bandit_tune.policies")}
            assert not outside, (module, outside)


def test_the_driver_knows_policies_only_and_never_ray_or_tensorflow():
    graph = _graph()
    allowed = ("bandit_tune.driver", "bandit_tune.policies", "bandit_tune.project")
    for module, edges in graph.items():
        if module.startswith("bandit_tune.driver"):
            assert all(e.startswith(allowed) for e in edges), (module, edges)
    for root, _, files in os.walk(os.path.join(PACKAGE, "driver")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(root, name)) as f:
                    tree = ast.parse(f.read())
                imported = {
                    alias.name.split(".")[0]
                    for node in ast.walk(tree)
                    if isinstance(node, ast.Import)
                    for alias in node.names
                } | {
                    (node.module or "").split(".")[0]
                    for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom)
                }
                assert not imported & {"ray", "tensorflow", "keras"}, (name, imported)


def test_cli_and_demo_do_not_import_each_other_both_ways():
    graph = _graph()
    assert not (
        "bandit_tune.cli" in graph["bandit_tune.demo"]
        and "bandit_tune.demo" in graph["bandit_tune.cli"]
    )
    assert "bandit_tune.cli" not in graph["bandit_tune.demo"]
