"""The house's layers, read from the source: no import circle, dependencies point down."""

import ast
import os

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bandit_tune")


def _sources():
    """The path of every Python file of the package."""
    for root, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(root, name)


def _module_name(path):
    rel = os.path.relpath(path, os.path.dirname(PACKAGE))[: -len(".py")].replace(os.sep, ".")
    return rel.removesuffix(".__init__")


def _graph():
    """Module -> the bandit_tune modules it imports (at the top or inside functions)."""
    modules = {}
    for path in _sources():
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


def test_cli_and_demo_do_not_import_each_other_both_ways():
    graph = _graph()
    assert not (
        "bandit_tune.cli" in graph["bandit_tune.demo"]
        and "bandit_tune.demo" in graph["bandit_tune.cli"]
    )
    assert "bandit_tune.cli" not in graph["bandit_tune.demo"]


# -- the folders' import rules -------------------------------------------------------------
#: Files the package root may hold: the entry points and the shared vocabulary.
ENTRY_POINTS = {"bandit_tune", "bandit_tune.cli", "bandit_tune.demo"}
VOCABULARY = {"bandit_tune.objective", "bandit_tune.space"}

#: Folder -> the folders (and vocabulary) it may import. A name ending in a module
#: allows that module only.
ALLOWED = {
    "policies": {"policies"},
    "vocabulary": {"vocabulary"},
    "driver": {"driver", "policies", "vocabulary"},
    "replay": {"replay", "driver", "policies", "vocabulary"},
    "ray_tune": {"ray_tune", "replay", "driver", "policies", "vocabulary"},
    "pool": {"pool", "ray_tune.cluster", "driver", "policies", "vocabulary"},
    "arm": {"arm", "pool.worker", "ray_tune.cluster", "driver", "policies", "vocabulary"},
    "tuner": {"tuner", "arm", "pool", "ray_tune", "replay", "driver", "policies", "vocabulary"},
}

#: Folder -> third-party packages it must never import (at any depth of a module).
FORBIDDEN_PACKAGES = {
    "policies": {"ray", "tensorflow", "keras"},
    "driver": {"ray", "tensorflow", "keras"},
    "replay": {"ray", "tensorflow", "keras"},
    "ray_tune": {"tensorflow", "keras"},
    "pool": {"tensorflow", "keras", "ray.tune", "ray.train", "ray.air"},
    "tuner": {"tensorflow", "keras"},
}


def _room(module):
    """The folder (or 'vocabulary', or 'entry') a module belongs to."""
    if module in ENTRY_POINTS:
        return "entry"
    if module in VOCABULARY:
        return "vocabulary"
    parts = module.split(".")
    return parts[1] if parts[1] in ALLOWED else None


def _allowed(source_room, target):
    room = _room(target)
    for rule in ALLOWED[source_room]:
        named = f"bandit_tune.{rule}"
        if rule == room or target == named or target.startswith(named + "."):
            return True
    return False


def test_the_package_root_holds_only_entry_points_and_the_vocabulary():
    root = {n[: -len(".py")] for n in os.listdir(PACKAGE) if n.endswith(".py")}
    allowed = {m.rpartition(".")[2] for m in ENTRY_POINTS | VOCABULARY} | {"__init__"}
    assert root <= allowed, sorted(root - allowed)
    folders = {
        n for n in os.listdir(PACKAGE) if os.path.isfile(os.path.join(PACKAGE, n, "__init__.py"))
    }
    assert folders == set(ALLOWED) - {"vocabulary"}, folders


def test_every_import_follows_its_folders_rule():
    graph = _graph()
    wrong = []
    for module, edges in graph.items():
        room = _room(module)
        assert room is not None, module
        if room == "entry":
            continue
        for target in edges:
            if target != "bandit_tune" and not _allowed(room, target):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "\n".join(sorted(wrong))


def _third_party(path):
    """Every module a file imports (dotted names as written), with the function it is in."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            is_function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            inner = child.name if is_function else function
            if isinstance(child, ast.Import):
                found.extend((alias.name, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and not child.level and child.module:
                found.extend(
                    (f"{child.module}.{alias.name}", function) for alias in child.names
                )
            visit(child, inner)

    visit(tree, None)
    return found


def _imports_package(name, package):
    return name == package or name.startswith(package + ".")


def test_keras_and_tensorflow_load_only_in_arm_and_each_folder_keeps_off_its_packages():
    wrong = []
    for path in _sources():
        module = _module_name(path)
        room = _room(module)
        forbidden = set(FORBIDDEN_PACKAGES.get(room, ()))
        if room == "vocabulary":
            forbidden = {"tensorflow", "keras", "ray"}
        for imported, function in _third_party(path):
            for package in forbidden:
                if not _imports_package(imported, package):
                    continue
                # a hyperparameter's Ray Tune domain: Ray only when asked for one
                if room == "vocabulary" and package == "ray" and function == "to_ray":
                    continue
                wrong.append(f"{module} imports {imported} (in {function or 'the module'})")
    assert not wrong, "\n".join(sorted(wrong))


def _code_lines(node, source_lines):
    """Lines of ``node`` that hold code: not blank, not a comment, not a docstring."""
    docstrings = set()
    for inner in ast.walk(node):
        body = getattr(inner, "body", None)
        if (
            isinstance(inner, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(
        1
        for number in range(node.lineno, node.end_lineno + 1)
        if number not in docstrings
        and source_lines[number - 1].strip()
        and not source_lines[number - 1].strip().startswith("#")
    )


def test_no_function_is_over_80_lines_and_the_tuner_class_holds_300_of_code():
    long = []
    for path in _sources():
        with open(path) as f:
            source = f.read()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source, path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.end_lineno - node.lineno + 1 > 80:  # docstring included
                    long.append(f"{_module_name(path)}.{node.name}")
            if isinstance(node, ast.ClassDef) and node.name == "BanditTuner":
                assert _code_lines(node, lines) <= 300, _code_lines(node, lines)
    assert not long, long


def test_only_the_runner_writes_an_arm():
    """The arm table's fields change in driver/runner.py and driver/arms.py only."""
    import re

    fields = "failures|checkpoint|checkpoint_step|step|state|config|decided|worker|lineage"
    write = re.compile(rf"\barm\.({fields})\s*(\+|-)?=(?!=)")
    found = []
    for path in _sources():
        if path.endswith(("runner.py", "arms.py")):
            continue
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if write.search(line):
                    found.append(f"{_module_name(path)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
