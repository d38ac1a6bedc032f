"""Wall time of a sweep: the Ray executor against the local one, same machine, back to back;
and the Ray executor on a cluster of 1 and of 2 single-CPU nodes.

    python benchmarks/ray_overhead.py [PROFILE] [--jobs 2] [--rounds 1] [--scaling]
                                      [--out benchmarks/results/ray_overhead-PROFILE.json]

Every sweep trains every run of PROFILE (default: smoke; a name in params/ or a YAML path,
such as benchmarks/quick4.yaml, four runs of the quick profile) from scratch into a new
temporary folder, by the command a user types:

- local: `make runs PROFILE=... -j JOBS` (one `python -m lib.sweep run` process per run);
- ray:   `python -m lib.sweep.ray_executor PROFILE --jobs JOBS --local-cpus JOBS`: a local Ray
         instance of JOBS CPUs started and stopped by the command, the same threads per run.

Each round runs both, in alternating order (local first in odd rounds), so that a change of
the machine's load hits both alike. With --scaling it then runs the Ray executor on a cluster
on this machine (ray.cluster_utils.Cluster, on 127.0.0.1 only, shut down at the end) of one
and then of two nodes with 1 CPU each, one thread per run (`--cpus-per-run 1`).

Prints the wall times, per run and in all, and the ratios (ray / local per round, 1 node / 2
nodes); checks that every run ended complete; writes it all as JSON. A benchmark, not a
test: the numbers depend on the machine and its load (recorded before and after each sweep).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lib import record, sweep  # noqa: E402
from lib.sweep import profiles  # noqa: E402


def _timed(command: list[str], env: dict | None = None) -> dict:
    before = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return {"seconds": seconds, "load_before": before, "load_after": os.getloadavg()[0]}


def _complete(profile, results: Path) -> None:
    for run in profile.runs:  # raises unless every run has a complete record
        record.load(sweep.run_dir(profile, run, results) / "record.json", complete=True)


def local_sweep(path: str, results: Path, jobs: int) -> dict:
    return _timed(["make", "--no-print-directory", "-k", f"-j{jobs}", "runs", f"PROFILE={path}",
                   f"RESULTS_DIR={results}"])


def ray_sweep(path: str, results: Path, jobs: int, address: str | None = None, cpus_per_run: int | None = None) -> dict:
    command = [sys.executable, "-m", "lib.sweep.ray_executor", path, "--results", str(results), "--jobs", str(jobs)]
    command += ["--cpus-per-run", str(cpus_per_run)] if cpus_per_run else []
    command += [] if address else ["--local-cpus", str(jobs)]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # none: a local instance
    return _timed(command, {**env, "RAY_ADDRESS": address} if address else env)


def cluster_sweeps(path: str, profile, tmp: Path) -> dict:
    """The Ray executor on 1, then 2, single-CPU nodes of a loopback cluster (as tests/test_ray.py)."""
    import ray
    import ray._private.services as services
    from ray.cluster_utils import Cluster

    lookup = services.get_node_ip_address
    services.get_node_ip_address = lambda address=None: "127.0.0.1"
    out = {}
    try:
        for nodes in (1, 2):
            cluster = Cluster(initialize_head=True, head_node_args={
                "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False})
            try:
                for _ in range(nodes - 1):
                    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
                cluster.wait_for_nodes()
                results = tmp / f"nodes{nodes}"
                out[f"nodes{nodes}"] = ray_sweep(path, results, 1, cluster.address, cpus_per_run=1)
                _complete(profile, results)
                print(f"  {nodes} node(s) of 1 CPU: {out[f'nodes{nodes}']['seconds']:8.1f} s", flush=True)
            finally:
                ray.shutdown()
                cluster.shutdown()
    finally:
        services.get_node_ip_address = lookup
    out["ratio_1_over_2"] = out["nodes1"]["seconds"] / out["nodes2"]["seconds"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", nargs="?", default="smoke")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--scaling", action="store_true", help="also 1 and 2 single-CPU nodes")
    parser.add_argument("--out")
    args = parser.parse_args()
    profile = profiles.load_profile(args.profile)
    path = str(profiles.profile_path(args.profile).resolve())
    n = len(profile.runs)
    result = {"profile": profile.name, "runs": n, "jobs": args.jobs, "rounds": [], "host": platform.node(),
              "cpus": os.cpu_count(), "command": " ".join(["python", *sys.argv]),
              "date": time.strftime("%Y-%m-%d %H:%M %Z")}
    print(f"{profile.name}: {n} runs, {args.jobs} at a time", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            order = ("local", "ray") if i % 2 == 0 else ("ray", "local")
            entry = {"order": order}
            for name in order:
                results = Path(tmp) / f"round{i}-{name}"
                entry[name] = (local_sweep if name == "local" else ray_sweep)(path, results, args.jobs)
                _complete(profile, results)
                print(f"  round {i + 1} {name:5s} {entry[name]['seconds']:8.1f} s   "
                      f"{entry[name]['seconds'] / n:6.1f} s per run", flush=True)
            entry["ratio"] = entry["ray"]["seconds"] / entry["local"]["seconds"]
            print(f"  round {i + 1} ratio {entry['ratio']:.3f} (ray / local)", flush=True)
            result["rounds"].append(entry)
        if args.scaling:
            result["scaling"] = cluster_sweeps(path, profile, Path(tmp))
            print(f"  scaling: 1 node / 2 nodes = {result['scaling']['ratio_1_over_2']:.3f}", flush=True)
    out = Path(args.out or REPO / f"benchmarks/results/ray_overhead-{profile.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    record.atomic(out, lambda tmp: tmp.write_text(json.dumps(result, indent=1) + "\n"))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
