"""`lib` in layers: every module belongs to one, and imports only from its own layer or those below.

    core      the method: the network and its LIF kernel, surrogates, schedules, penalties, energy,
              data, the training loop, the record, the paper's numbers
    analysis  what the records say: both selection rules, tables, comparison, provenance, plots,
              the ablation outcomes
    sweep     many runs: profiles, run folders and states, execution, the Ray executor
    export    what leaves the project: published models, NIR, sweep archives
    cli       the commands that tie them together (`python -m lib.sweep ...`)

Imports are read from the source (an `ast` walk, so a lazy import inside a function counts too);
the `if __name__ == "__main__":` block of a module is its entry point, not a dependency, and is
skipped. A new module must be placed in LAYERS, so the map cannot silently go stale."""

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib"

LAYERS = {
    "core": {"kernels", "snn", "schedules", "penalties", "energy", "data", "train", "record", "paper"},
    "analysis": {"select", "robust", "report", "plots", "compare", "provenance", "ablations"},
    "sweep": {"profiles", "sweep", "ray_executor"},
    "export": {"models", "nir_export", "archive"},
    "cli": {"cli"},
}
ORDER = list(LAYERS)
LAYER = {module: name for name, modules in LAYERS.items() for module in modules}


def modules():
    files = {p.stem for p in LIB.glob("*.py") if p.name != "__init__.py"}
    packages = {p.name for p in LIB.iterdir() if (p / "__init__.py").exists()}
    return sorted(files | packages)


def is_main_block(node) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def imported(path: Path) -> set:
    """The lib modules `path` imports (relative `from . import x`, `from .x import y`, or `lib.x`)."""
    tree = ast.parse(path.read_text())
    found, todo = set(), [n for n in tree.body if not is_main_block(n)]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module is None:
                found |= {alias.name for alias in node.names}
            elif node.level == 1:
                found.add(node.module.split(".")[0])
            elif node.module and node.module.split(".")[0] == "lib":
                parts = node.module.split(".")
                found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("lib.")}
        todo.extend(ast.iter_child_nodes(node))
    return found - {"__version__"}


def test_every_module_has_a_layer():
    assert set(modules()) == set(LAYER), "place each lib module in tests/test_layers.py LAYERS"


@pytest.mark.parametrize("module", modules())
def test_imports_go_one_way(module):
    path = LIB / f"{module}.py" if (LIB / f"{module}.py").exists() else LIB / module / "__init__.py"
    mine = ORDER.index(LAYER[module])
    upward = {m: LAYER[m] for m in imported(path) if ORDER.index(LAYER[m]) > mine}
    assert not upward, f"lib.{module} ({LAYER[module]}) imports from a layer above it: {upward}"


def test_the_walk_sees_lazy_imports_and_skips_the_entry_point(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from . import a\nfrom .b import c\ndef f():\n    from . import d\n"
                      "if __name__ == '__main__':\n    from .e import main\n")
    assert imported(source) == {"a", "b", "d"}
