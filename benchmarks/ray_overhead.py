"""Wall time of a sweep: the Ray executor against the local one, same machine, back to back.

    python benchmarks/ray_overhead.py [PROFILE] [--jobs 2] [--out benchmarks/results/ray_overhead-PROFILE.json]

Both sweeps train every run of PROFILE (default: smoke) from scratch into temporary
folders, `--jobs` runs at a time with the threads the local executor gives them:

- local: `lib.sweep.execute` per run in a pool of `--jobs` processes (what `make -j JOBS` does);
- ray:   `lib.ray_executor.run_sweep` on a local Ray instance of `--jobs` CPUs, timed from the
         call (Ray's start and stop included) to its return.

Prints both wall times, per run and in all, and their ratio (ray / local); writes them as JSON.
A benchmark, not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib import ray_executor, record, sweep  # noqa: E402


def _execute(args):
    profile, run, results, jobs = args
    sweep.execute(profile, run, results, jobs)


def local_sweep(profile, results: Path, jobs: int) -> float:
    start = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_execute, [(profile, r, results, jobs) for r in profile.runs]))
    return time.perf_counter() - start


def ray_sweep(profile, results: Path, jobs: int) -> float:
    start = time.perf_counter()
    # a local instance sized like make -j JOBS: JOBS CPUs, the same threads per run
    ok = ray_executor.run_sweep(profile, results, None, jobs, local_cpus=jobs)
    if not ok:
        raise SystemExit("the Ray sweep did not complete every run")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", nargs="?", default="smoke")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    profile = sweep.load_profile(args.profile)
    ray_executor.check_executor("ray")
    with tempfile.TemporaryDirectory() as tmp:
        local = local_sweep(profile, Path(tmp) / "local", args.jobs)
        ray_time = ray_sweep(profile, Path(tmp) / "ray", args.jobs)
        for r in profile.runs:  # both complete, same numbers
            record.load(sweep.run_dir(profile, r, Path(tmp) / "ray") / "record.json", complete=True)
    n = len(profile.runs)
    result = {
        "profile": profile.name, "runs": n, "jobs": args.jobs, "local_seconds": local, "ray_seconds": ray_time,
        "ratio": ray_time / local, "host": platform.node(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg(), "command": " ".join(sys.argv),
    }
    print(f"{profile.name}: {n} runs at {args.jobs} parallel")
    print(f"  local  {local:8.1f} s   {local / n:6.1f} s per run")
    print(f"  ray    {ray_time:8.1f} s   {ray_time / n:6.1f} s per run")
    print(f"  ratio  {ray_time / local:.3f} (ray / local)")
    out = Path(args.out or f"benchmarks/results/ray_overhead-{profile.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
