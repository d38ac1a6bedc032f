"""Studies: several profiles around one base setting, one factor changed at a time.

A study is a YAML file `params/<name>.yaml` with three keys:

    base:                          # run parameters of every variant (keys of lib.train.Params)
      epochs: 8
      spike_normalisation: per_neuron_step
    grid:                          # the default grid of every variant (as in a profile)
      seeds: [0]
      sigma0: {baseline: [], linear: [0.3, 1.0, 3.0]}
    factors:                       # factor -> value label -> what it changes in base
      surrogate:
        width3: {surrogate_scale: 3.0}
        fast_sigmoid1: {surrogate: fast_sigmoid, grid: {seeds: [0], sigma0: {...}}}

It expands into one `lib.sweep` profile per variant: `base` (the base setting itself)
and `<factor>-<label>` for every value, named `<study>/<variant>`, so that each run lives
in `results/<study>/<variant>/<run-id>/` and is executed by `lib.sweep.execute` through
`notebooks/train.ipynb` like any other. A variant may replace the grid (its sigma0 are
in the unit of its own setting); every variant has its own baseline, the reference its
sparse runs are judged against. Variants keep the file's order: the Makefile runs them
in that order, so put the important ones first.

    python -m lib.study check   STUDY                  validate, print every run and its state
    python -m lib.study records STUDY                  record paths of every run (for make)
    python -m lib.study run     STUDY VARIANT/RUN-ID   execute one run (make calls this)
    python -m lib.study status  STUDY                  report; exit 1 if a run is not complete
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import sweep

STUDY_KEYS = ("base", "grid", "factors")
BASE = "base"
FACTOR = re.compile(r"[A-Za-z0-9_.]+")
LABEL = re.compile(r"[A-Za-z0-9_.-]+")  # a factor has no "-": <factor>-<label> stays unambiguous


@dataclass(frozen=True)
class Variant:
    factor: str  # "base" for the base setting
    label: str  # the factor's value, as named in the study ("default" for the base)
    profile: sweep.Profile  # named <study>/<variant>

    @property
    def name(self) -> str:
        return self.profile.name.split("/", 1)[1]


@dataclass(frozen=True)
class Study:
    name: str
    variants: tuple  # of Variant, base first, then the file's order

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise ValueError(f"no variant {name!r} in study {self.name!r}; variants: "
                         f"{', '.join(v.name for v in self.variants)}")

    @property
    def factors(self) -> list[str]:
        return list(dict.fromkeys(v.factor for v in self.variants if v.factor != BASE))


def parse_study(name: str, values: dict) -> Study:
    """Validate a study (see the module docstring) and expand it into profiles."""
    if not isinstance(values, dict) or set(values) != set(STUDY_KEYS):
        got = sorted(values) if isinstance(values, dict) else type(values).__name__
        raise ValueError(f"study {name!r} must have exactly the keys {', '.join(STUDY_KEYS)}; got {got}")
    base, grid, factors = values["base"] or {}, values["grid"], values["factors"]
    if not isinstance(base, dict) or "grid" in base:
        raise ValueError(f"study {name!r}: base must be a mapping of run parameters (the grid sits beside it)")
    if not isinstance(factors, dict):  # {} is a study of the base setting alone (a confirmation)
        raise ValueError(f"study {name!r}: factors must map factor names to {{label: changes}}")
    variants = [Variant(BASE, "default", sweep.parse_profile(f"{name}/{BASE}", {**base, "grid": grid}))]
    for factor, labels in factors.items():
        if factor == BASE or not FACTOR.fullmatch(str(factor)) or not isinstance(labels, dict) or not labels:
            raise ValueError(f"study {name!r}: factor {factor!r} must be a name (not {BASE!r}, letters, digits, "
                             "_ and .) mapping value labels to changes")
        for label, changes in labels.items():
            where = f"study {name!r}: {factor}.{label}"
            if not LABEL.fullmatch(str(label)):
                raise ValueError(f"{where}: a label is letters, digits, _, . and - only")
            if not isinstance(changes, dict):
                raise ValueError(f"{where}: give the changed parameters as a mapping")
            own_grid = changes.get("grid", grid)
            params = {**base, **{k: v for k, v in changes.items() if k != "grid"}}
            variants.append(Variant(factor, str(label),
                                    sweep.parse_profile(f"{name}/{factor}-{label}", {**params, "grid": own_grid})))
    return Study(name, tuple(variants))


def load_study(study: str) -> Study:
    path = sweep.profile_path(study)
    if not path.is_file():
        raise FileNotFoundError(f"no study {path}")
    return parse_study(path.stem, yaml.safe_load(path.read_text()))


def records(study: Study, results: Path) -> list[Path]:
    return [sweep.run_dir(v.profile, r, results) / "record.json" for v in study.variants for r in v.profile.runs]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.study", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("check", "records", "run", "status", "prune"))
    parser.add_argument("study", help="a name in params/ (ablations) or a YAML path")
    parser.add_argument("run", nargs="?", help="for `run`: VARIANT/RUN-ID")
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    parser.add_argument("--jobs", type=int, default=0, help="parallel runs sharing the CPU (default: make's -j)")
    args = parser.parse_args(argv)
    try:
        study = load_study(args.study)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results = Path(args.results)
    if args.command == "check":
        for v in study.variants:
            for r in v.profile.runs:
                print(f"{sweep.state(v.profile, r, results):10s} {v.name}/{r.id}")
    elif args.command == "records":
        print(" ".join(str(p) for p in records(study, results)))
    elif args.command == "prune":
        for v in study.variants:
            for path in sweep.prune(v.profile, results):
                print(f"stale: the study changed since this run; moved to {path}")
    elif args.command == "run":
        if not args.run or "/" not in args.run:
            parser.error("run needs VARIANT/RUN-ID")
        variant, run_id = args.run.split("/", 1)
        jobs = args.jobs or sweep.jobs_from_make(os.environ.get("MAKEFLAGS", ""))
        try:
            profile = study.variant(variant).profile
            print(f"run {profile.name}/{run_id}", flush=True)
            sweep.execute(profile, profile.run(run_id), results, jobs)
        except (ValueError, sweep.RunFailed) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    else:
        texts, complete = zip(*(sweep.report(v.profile, results) for v in study.variants), strict=True)
        done = sum(sweep.state(v.profile, r, results) == "complete" for v in study.variants for r in v.profile.runs)
        total = sum(len(v.profile.runs) for v in study.variants)
        print(f"study {study.name}: {done} of {total} runs complete")
        print("\n".join(t for t, c in zip(texts, complete, strict=True) if not c))
        return 0 if all(complete) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
