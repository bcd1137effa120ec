"""The modules of policyhook/ import each other without a cycle, counting the imports
made inside functions too (a cycle there is a layer that calls back up), and the layers
keep to their side: libvirt's adapter makes no words."""

import ast
import os

from unit_helpers import REPO

PACKAGE = os.path.join(REPO, "policyhook")


def modules():
    """{module name: path} of every module under policyhook/."""
    found = {}
    for dirpath, _dirs, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                name = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                found[name[:-len(".__init__")] if name.endswith(".__init__") else name] = path
    return found


def imports(name, path, known):
    """The policyhook modules `name` imports, anywhere in it."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    package = name.split(".") if path.endswith("__init__.py") else name.split(".")[:-1]
    found = set()
    # Imports under `if TYPE_CHECKING:` are never made: they name types for mypy only.
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            typing_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = target + "." + alias.name
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != name}


def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges):
    """Each import cycle once, as the list of modules along it."""
    found, done = [], set()

    def visit(node, trail):
        if node in trail:
            cycle = trail[trail.index(node):]
            if frozenset(cycle) not in done:
                done.add(frozenset(cycle))
                found.append(cycle + [node])
            return
        if node in seen:
            return
        for nxt in sorted(edges[node]):
            visit(nxt, trail + [node])
        seen.add(node)

    seen = set()
    for node in sorted(edges):
        visit(node, [])
    return found


def test_no_import_cycle_in_policyhook():
    assert [" -> ".join(c) for c in cycles(graph())] == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_libvirts_adapter_makes_no_words_and_effects_builds_no_session():
    edges = graph()
    assert "policyhook.describe" not in edges["policyhook.virt"]
    assert "policyhook.session" not in edges["policyhook.effects"]
