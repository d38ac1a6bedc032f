"""Profiles: the YAML description of a sweep, read, checked and expanded into runs.

A profile is a YAML file `params/<name>.yaml`: run parameters (keys of
`lib.params.Params`, the same for every run) plus a grid

    grid:
      seeds: [0]
      sigma0:                      # schedule: the sigma0 values to try
        baseline: []               # the baseline takes none (sigma0 = 0)
        linear: [1.0e-6, 2.0e-6]

which expands to runs = schedules x sigma0 values x seeds, each with a stable id such
as `linear-s2e-06-seed0` or `baseline-seed0`. An unknown or repeated key anywhere is an
error naming the file and line, raised before any run. Because the run parameters sit at
the top level, `papermill ... -f params/<name>.yaml` also works for a single run (the
notebook accepts `grid` and `factors` by name and ignores them).

Instead of `sigma0`, a grid may name a committed tables folder whose choices it trains again,
on other seeds (a held-out check) or on other data (the full training set):

    grid:
      seeds: [2, 3, 4]
      chosen: figures/paper        # the sigma0 of table1_robust.csv and table2_robust.csv there

which is the grid `sigma0: {baseline: [], <schedule>: [its Table 1 and Table 2 sigma0]}` read
from those CSVs (our rule's choices, one sigma0 per schedule and table; `chosen_sigma0`), so
that the choices are never copied by hand.

A profile may also carry `factors` (an ablation study: one factor changed at a time):

    factors:                       # factor -> value label -> what it changes
      surrogate:
        width3: {surrogate_scale: 3.0}
        fast1: {surrogate: fast_sigmoid, grid: {seeds: [0], sigma0: {...}}}

Then every value is a *variant* with its own baseline: `base` (the top-level setting) and
`<factor>-<label>` for each value, in the file's order. A variant may replace the grid
(its sigma0 are in its own setting's unit). Its runs have ids `<variant>/<run-id>`.

A profile may also say what each run needs on a Ray cluster (`lib.sweep.ray_executor`; the local
executor has no GPUs to share):

    resources:
      gpus_per_run: 0.25           # a fraction packs runs on one GPU (default: 0.25 on cuda, else 0)

CPUs per run are the run parameter `threads` (default: the cores / JOBS), for both executors.

`load_profile(name or path)` -> `Profile` (its `runs` in the file's order, variant by
variant); `parse_profile` does the same for contents already read. Where runs live and how
they are executed is `lib.sweep`'s.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .. import schedules
from ..params import Params

REPO = Path(__file__).resolve().parents[2]
PARAMS_DIR = REPO / "params"
GRID_KEYS = ("seeds", "sigma0", "chosen")
CHOSEN_TABLES = ("table1_robust", "table2_robust")  # the tables whose choices `grid.chosen` reads
SET_BY_GRID = ("schedule", "sigma0", "seed", "output_dir")  # differ per run: never in the run parameters
BASE = "base"  # the variant of a profile with factors that changes nothing
FACTOR = re.compile(r"[A-Za-z0-9_.]+")
LABEL = re.compile(r"[A-Za-z0-9_.-]+")  # a factor has no "-": <factor>-<label> stays unambiguous
RESOURCES = ("gpus_per_run",)  # keys of a profile's `resources`
PROFILE_KEYS = ("grid", "factors", "resources")  # a profile's keys besides run parameters


@dataclass(frozen=True)
class Run:
    """One point of a grid (of one variant, for a profile with factors)."""

    schedule: str
    sigma0: float
    seed: int
    variant: str = ""  # "" in a profile without factors

    @property
    def id(self) -> str:
        name = f"baseline-seed{self.seed}" if self.schedule == "baseline" else \
            f"{self.schedule}-s{self.sigma0:g}-seed{self.seed}"
        return f"{self.variant}/{name}" if self.variant else name


@dataclass(frozen=True)
class Variant:
    name: str  # "" (no factors), "base", or "<factor>-<label>"
    factor: str  # "" (no factors), "base", or the factor
    label: str  # "" (no factors), "default", or the factor's value as named in the file
    params: dict  # run parameters of its runs


@dataclass(frozen=True)
class Profile:
    name: str
    params: dict  # the top-level run parameters (the base setting, with factors)
    runs: tuple  # of Run, variant by variant, each in grid order
    variants: tuple  # of Variant; one, named "", without factors
    resources: dict = dataclasses.field(default_factory=dict)  # per run on a Ray cluster: RESOURCES
    chosen: str = ""  # grid.chosen: the tables folder whose choices the grid trains again ("" if none)

    @property
    def has_factors(self) -> bool:
        return self.variants[0].name != ""

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise ValueError(f"no variant {name!r} in profile {self.name!r}; variants: "
                         f"{', '.join(v.name for v in self.variants)}")

    def run(self, run_id: str) -> Run:
        for r in self.runs:
            if r.id == run_id:
                return r
        raise ValueError(f"no run {run_id!r} in profile {self.name!r}; runs: {', '.join(r.id for r in self.runs)}")


class UniqueKeyLoader(yaml.SafeLoader):
    """pyyaml's safe loader, refusing a mapping that repeats a key (pyyaml keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"repeated key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path):
    """The YAML file's contents; ValueError naming the file and line of a syntax error or repeated key."""
    try:
        return yaml.load(path.read_text(), Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        raise ValueError(f"{path}, line {mark.line + 1}, column {mark.column + 1}: {err.problem}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: {err}") from None


def profile_path(profile: str) -> Path:
    """A profile name (`quick`) or a path to a YAML file."""
    path = Path(profile)
    return path if path.suffix in (".yaml", ".yml") else PARAMS_DIR / f"{profile}.yaml"


def _refuse_number_string(value, where):
    """YAML 1.1 (pyyaml, and papermill's -f) reads a float only with a dot and a signed
    exponent: 1.0e-6 is a float, 1e-6 and 1.0e6 are strings."""
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d*\.?\d+[eE][-+]?\d+", value):
        hint = "write its exponent with a sign, e.g. 1.0e+6" if "." in value else "write it with a dot, e.g. 1.0e-6"
        raise ValueError(f"{where}: {value!r} is a string to YAML; {hint}")


def _number(value, where):
    _refuse_number_string(value, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: sigma0 values must be finite numbers > 0, got {value!r}")
    return float(value)


def _setting(name: str, values: dict) -> tuple[dict, list]:
    """(run parameters, [(schedule, sigma0, seed), ...]) of one setting: parameters and a grid."""
    fields = {f.name for f in dataclasses.fields(Params)}
    unknown = sorted(set(values) - fields - {"grid"})
    if unknown:
        valid = sorted(fields - set(SET_BY_GRID))
        raise ValueError(f"profile {name!r}: unknown key(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(sorted(PROFILE_KEYS))}, {', '.join(valid)}")
    for key in SET_BY_GRID:
        if key in values:
            raise ValueError(f"profile {name!r}: {key} is set per run by the sweep (grid), not a run parameter")
    for key, value in values.items():
        _refuse_number_string(value, f"profile {name!r}: {key}")
    params = {k: v for k, v in values.items() if k != "grid"}
    try:  # type and range errors before any run
        Params.from_dict({**params, "schedule": "baseline"}).check()
    except ValueError as err:
        raise ValueError(f"profile {name!r}: {err}") from None

    grid = values.get("grid")
    if not isinstance(grid, dict):
        raise ValueError(f"profile {name!r} needs a grid: {{seeds: [...], sigma0: {{schedule: [...]}}}}")
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ValueError(f"profile {name!r}: unknown grid key(s) {', '.join(unknown)}; valid: {', '.join(GRID_KEYS)}")
    seeds = grid.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int and s >= 0 for s in seeds):
        raise ValueError(f"profile {name!r}: grid.seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    if "chosen" in grid:
        if "sigma0" in grid:
            raise ValueError(f"profile {name!r}: give grid.sigma0 or grid.chosen, not both")
        sigmas = chosen_sigma0(grid["chosen"], f"profile {name!r}: grid.chosen")
    else:
        sigmas = grid.get("sigma0")
    if not isinstance(sigmas, dict) or "baseline" not in sigmas:
        raise ValueError(f"profile {name!r}: grid.sigma0 must map schedules to sigma0 lists and include baseline")
    points = []
    for schedule, sigma0s in sigmas.items():
        try:
            schedules.check(schedule)
        except ValueError as err:
            raise ValueError(f"profile {name!r}: grid.sigma0: {err}") from None
        where = f"profile {name!r}: grid.sigma0.{schedule}"
        if schedule == "baseline":
            if sigma0s not in (None, []):
                raise ValueError(f"{where}: the baseline takes no sigma0 (write [] )")
            sigma0s = [0.0]
        elif not isinstance(sigma0s, list) or not sigma0s:
            raise ValueError(f"{where}: give a non-empty list of sigma0 values, or leave the schedule out")
        else:
            sigma0s = [_number(v, where) for v in sigma0s]
        points += [(schedule, s, seed) for s in sigma0s for seed in seeds]
    return params, points


def chosen_path(folder: str) -> Path:
    """`grid.chosen`'s folder: relative to the repository, or absolute."""
    return Path(folder) if Path(folder).is_absolute() else REPO / folder


def chosen_sigma0(folder, where: str = "grid.chosen") -> dict:
    """{schedule: [sigma0, ...]} of the choices in `folder`'s CHOSEN_TABLES (a path relative to
    the repository, or absolute): per schedule the sigma0 our rule chose for Table 1 and Table 2,
    each once, smallest first; `baseline: []`. A schedule without a point in a table adds nothing."""
    if not isinstance(folder, str) or not folder:
        raise ValueError(f"{where}: give a tables folder such as figures/paper, got {folder!r}")
    path = chosen_path(folder)
    sigmas: dict[str, list] = {"baseline": []}
    for table in CHOSEN_TABLES:
        file = path / f"{table}.csv"
        if not file.is_file():
            raise ValueError(f"{where}: no {file} (the tables step of a profile with several seeds writes it)")
        with file.open(newline="") as f:
            for row in csv.DictReader(f):
                if row["schedule"] == "baseline" or not row["sigma0"].strip():
                    continue
                values = set(ast.literal_eval(row["sigma0"]))  # "[0.00012, 0.00012]": one choice for all seeds
                if not values:
                    continue
                if len(values) != 1:
                    raise ValueError(f"{where}: {file.name} gives {row['schedule']} several sigma0 {sorted(values)}; "
                                     "our rule chooses one for all seeds")
                sigmas.setdefault(row["schedule"], [])
                if (value := float(values.pop())) not in sigmas[row["schedule"]]:
                    sigmas[row["schedule"]].append(value)
    return {k: sorted(v) for k, v in sigmas.items()}


def _variants(name: str, values: dict, factors) -> list[tuple[Variant, dict]]:
    """(variant, its setting) for a profile with factors: base first, then the file's order."""
    if not isinstance(factors, dict):  # {} is the base setting alone (a confirmation)
        raise ValueError(f"profile {name!r}: factors must map factor names to {{label: changes}}")
    base = {k: v for k, v in values.items() if k != "grid"}
    out = [(Variant(BASE, BASE, "default", {}), values)]
    for factor, labels in factors.items():
        if factor == BASE or not FACTOR.fullmatch(str(factor)) or not isinstance(labels, dict) or not labels:
            raise ValueError(f"profile {name!r}: factor {factor!r} must be a name (not {BASE!r}, letters, digits, "
                             "_ and .) mapping value labels to changes")
        for label, changes in labels.items():
            where = f"profile {name!r}: {factor}.{label}"
            if not LABEL.fullmatch(str(label)):
                raise ValueError(f"{where}: a label is letters, digits, _, . and - only")
            if not isinstance(changes, dict):
                raise ValueError(f"{where}: give the changed parameters as a mapping")
            if "resources" in changes:
                raise ValueError(f"{where}: resources are the whole profile's (top level), not a variant's")
            setting = {**base, **changes, "grid": changes.get("grid", values.get("grid"))}
            out.append((Variant(f"{factor}-{label}", factor, str(label), {}), setting))
    return out


def _resources(name: str, values) -> dict:
    """A profile's `resources`, checked."""
    if not isinstance(values, dict):
        raise ValueError(f"profile {name!r}: resources must be a mapping, e.g. {{gpus_per_run: 0.25}}")
    unknown = sorted(set(values) - set(RESOURCES))
    if unknown:
        hint = " (CPUs per run: the run parameter threads)" if "cpus_per_run" in unknown else ""
        raise ValueError(f"profile {name!r}: unknown resources key(s) {', '.join(map(str, unknown))}; "
                         f"valid: {', '.join(RESOURCES)}{hint}")
    gpus = values.get("gpus_per_run", 0.0)
    _refuse_number_string(gpus, f"profile {name!r}: resources.gpus_per_run")
    if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or not math.isfinite(gpus) or gpus < 0:
        raise ValueError(f"profile {name!r}: resources.gpus_per_run must be a number >= 0 (a fraction packs "
                         f"runs on one GPU), got {gpus!r}")
    return {k: float(v) for k, v in values.items()}


def parse_profile(name: str, values: dict) -> Profile:
    """Validate a profile's contents (see the module docstring) and expand its grid(s)."""
    if not isinstance(values, dict):
        raise ValueError(f"profile {name!r} must be a mapping of parameters and a grid")
    resources = _resources(name, values["resources"]) if "resources" in values else {}
    values = {k: v for k, v in values.items() if k != "resources"}
    if "factors" not in values:
        params, points = _setting(name, values)
        profile = Profile(name, params, tuple(Run(*p) for p in points), (Variant("", "", "", params),))
    else:
        plain = {k: v for k, v in values.items() if k != "factors"}
        variants, runs = [], []
        for variant, setting in _variants(name, plain, values["factors"]):
            params, points = _setting(f"{name}/{variant.name}", setting)
            variants.append(dataclasses.replace(variant, params=params))
            runs += [Run(*p, variant=variant.name) for p in points]
        profile = Profile(name, variants[0].params, tuple(runs), tuple(variants))
    grid = values.get("grid")
    chosen = grid.get("chosen", "") if isinstance(grid, dict) and "factors" not in values else ""
    profile = dataclasses.replace(profile, resources=resources, chosen=chosen)
    ids = [r.id for r in profile.runs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"profile {name!r}: repeated runs {', '.join(duplicates)}")
    return profile


def load_profile(profile: str) -> Profile:
    path = profile_path(profile)
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in PARAMS_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"no profile {path}; available: {available}")
    return parse_profile(path.stem, read_yaml(path))
