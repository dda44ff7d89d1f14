"""The layout the code keeps: imports run one way, each job lives in one module."""

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "zoo"


def zoo_imports(path: Path) -> set:
    """The zoo modules a module imports, at its top or inside its functions."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zoo"):
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            imported |= {name for name in names if (PACKAGE / f"{name[4:]}.py").exists()}
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names if alias.name.startswith("zoo.")}
    return imported - {"zoo"}


def import_graph() -> dict:
    return {f"zoo.{path.stem}": zoo_imports(path) for path in PACKAGE.glob("*.py")
            if path.stem != "__init__"}


def cycle(graph: dict) -> list | None:
    """One import cycle of the graph (a list of modules, first == last), or None."""
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                return trail[trail.index(imported):] + [imported]
            if imported not in state and (found := visit(imported, trail + [imported])):
                return found
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module, [module])):
            return found
    return None


def test_no_module_of_zoo_imports_one_that_imports_it_back():
    graph = import_graph()
    assert "zoo.commands" in graph["zoo.cli"] and "zoo.cli" not in graph["zoo.commands"]
    assert cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_the_training_loop_holds_no_input_pipeline():
    assert "tf.data" not in (PACKAGE / "training.py").read_text()


def test_files_are_made_durable_and_replaced_in_one_module():
    for path in PACKAGE.glob("*.py"):
        if path.name != "files.py":
            text = path.read_text()
            assert "os.fsync" not in text and "os.replace" not in text, path.name


def test_image_file_suffixes_are_listed_once():
    listing = [path.name for path in PACKAGE.glob("*.py") if '".jpeg"' in path.read_text()]
    assert listing == ["data.py"]


def test_modules_import_only_the_ones_listed_before_them_in_the_readme_layout():
    listed = [line.split()[0] for line in (ROOT / "README.md").read_text().splitlines()
              if line.startswith("zoo/") and line.split()[0].endswith(".py")]
    order = [f"zoo.{name[4:-3]}" for name in listed]
    assert sorted(order) == sorted(f"zoo.{path.stem}" for path in PACKAGE.glob("*.py")
                                   if path.stem != "__init__")
    for module, imported in import_graph().items():
        later = [name for name in imported if order.index(name) > order.index(module)]
        assert not later, f"{module} imports {later}, listed after it in README.md's layout"
