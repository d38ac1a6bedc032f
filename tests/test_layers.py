"""`lib` in layers that its folders show: every module belongs to one, and imports only from the
layers it is allowed to.

    core      lib/*.py, lib/kernels/   the method: the network and its LIF kernel, surrogates,
                                       schedules, penalties, energy, data, the training loop, the
                                       record, the paper's numbers
    analysis  lib/analysis/            what the records say: both selection rules, tables,
                                       comparison, provenance, plots, the ablation outcomes
    sweep     lib/sweep/               many runs: profiles, run folders and states, execution, the
                                       Ray executor
    export    lib/export/              what leaves the project: published models, NIR, archives
    cli       lib/sweep/cli.py         the commands (`python -m lib.sweep ...`), which tie them
                                       together: the one module that may import every layer

analysis and sweep are siblings (each reads records; neither needs the other); export packs and
publishes what both give. Imports are read from the source (an `ast` walk, so a lazy import inside
a function counts too); the `if __name__ == "__main__":` block of a module and a package's
`__main__.py` are entry points, not dependencies, and are skipped. A new module must be placed in
LAYERS, so the map cannot silently go stale."""

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib"

LAYERS = {
    "core": {"kernels", "snn", "schedules", "penalties", "energy", "data", "params", "machine", "train",
             "checkpoints", "evaluate", "record", "paper"},
    "analysis": {"analysis", "analysis.select", "analysis.robust", "analysis.report", "analysis.plots",
                 "analysis.compare", "analysis.provenance", "analysis.ablations"},
    "sweep": {"sweep", "sweep.profiles", "sweep.ray_executor"},
    "export": {"export", "export.models", "export.nir_export", "export.archive"},
    "cli": {"sweep.cli"},
}
MAY_IMPORT = {
    "core": {"core"},
    "analysis": {"core", "analysis"},
    "sweep": {"core", "sweep"},
    "export": {"core", "analysis", "sweep", "export"},
    "cli": set(LAYERS),
}
FOLDER = {"analysis": "analysis", "sweep": "sweep", "export": "export"}  # the folder that holds a layer
LAYER = {module: name for name, modules in LAYERS.items() for module in modules}


def module_name(path: Path) -> str:
    """lib/analysis/select.py -> "analysis.select"; lib/sweep/__init__.py -> "sweep"."""
    parts = path.relative_to(LIB).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict:
    """Every lib module -> its file (a package's __init__.py is the package's module)."""
    found = {}
    for path in sorted(LIB.rglob("*.py")):
        if path.name != "__main__.py" and path != LIB / "__init__.py":
            found[module_name(path)] = path
    return found


def is_main_block(node) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _known(parts: list, names: set) -> str | None:
    """The longest prefix of `parts` (below lib) that names a module of `names`."""
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in names:
            return ".".join(parts[:end])
    return None


def imported(path: Path, names: set, package: list) -> set:
    """The modules of `names` that the file at `path`, in lib package `package` (["analysis"] for
    lib/analysis/x.py, [] for lib/x.py), imports: relative (`from .. import record`, `from .x import
    y`) or absolute (`from lib.analysis import select`, `import lib.snn`)."""
    tree = ast.parse(path.read_text())
    found, todo = set(), [n for n in tree.body if not is_main_block(n)]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.ImportFrom):
            dotted = (node.module or "").split(".") if node.module else []
            if node.level:
                module = package[: len(package) - (node.level - 1)] + dotted
            elif dotted[:1] == ["lib"]:
                module = dotted[1:]
            else:
                continue
            for alias in node.names:
                hit = _known(module + [alias.name], names) or _known(module, names)
                found |= {hit} if hit else set()
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lib."):
                    hit = _known(alias.name.split(".")[1:], names)
                    found |= {hit} if hit else set()
        todo.extend(ast.iter_child_nodes(node))
    return found


def package_of(path: Path) -> list:
    return list(path.parent.relative_to(LIB).parts)


def test_every_module_has_a_layer():
    assert set(modules()) == set(LAYER), "place each lib module in tests/test_layers.py LAYERS"


@pytest.mark.parametrize("module", sorted(LAYER))
def test_the_folder_names_the_layer(module):
    layer = LAYER[module]
    top = module.split(".")[0]
    if layer == "core":
        assert top not in FOLDER.values(), f"lib.{module} is core: it belongs at the top of lib/"
    elif layer != "cli":
        assert top == FOLDER[layer], f"lib.{module} is {layer}: it belongs in lib/{FOLDER[layer]}/"


@pytest.mark.parametrize("module", sorted(LAYER))
def test_imports_go_one_way(module):
    path = modules()[module]
    mine = LAYER[module]
    found = imported(path, set(LAYER), package_of(path)) - {module}
    forbidden = {m: LAYER[m] for m in found if LAYER[m] not in MAY_IMPORT[mine]}
    assert not forbidden, f"lib.{module} ({mine}) imports from a layer it may not: {forbidden}"


def test_the_walk_sees_relative_absolute_and_lazy_imports_and_skips_the_entry_point(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from . import select\nfrom .. import record\nfrom ..snn import LAYERS\n"
                      "from lib.sweep import profiles\nimport lib.export.models\n"
                      "def f():\n    from ..export import archive\n"
                      "if __name__ == '__main__':\n    from ..sweep.cli import main\n")
    assert imported(source, set(LAYER), ["analysis"]) == {
        "analysis.select", "record", "snn", "sweep.profiles", "export.models", "export.archive"}


def test_an_upward_import_fails(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from ..analysis import select\n")
    found = imported(source, set(LAYER), ["sweep"])
    assert {m for m in found if LAYER[m] not in MAY_IMPORT["sweep"]} == {"analysis.select"}
