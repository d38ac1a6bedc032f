"""The Ray executor: a profile's runs as Ray tasks, on a cluster or a local Ray instance.

    python -m lib.sweep.ray_executor PROFILE [--results results] [--jobs N]
                               [--cpus-per-run N] [--gpus-per-run F] [--max-retries 3]
    python -m lib.sweep.ray_executor --check-executor NAME     exit 2 unless NAME is local, or ray and Ray imports

The local executor (make's file targets, `lib.sweep run`) needs nothing but this package;
this one needs Ray (`pip install -e '.[ray]'`, i.e. ray==2.60.0). Both end in the same
place, `results/<profile>/<run-id>/{train.ipynb, record.json, checkpoints/}`, with the
same resume rule: a run is trained iff it lacks a complete (or stale) record.

Where the runs go. `RAY_ADDRESS` (Ray's own variable, or `--address`) names a running
cluster (`host:port`, `ray://host:port`, `auto`); the driver checks that something answers
there before anything else and fails within seconds otherwise. Without it a local Ray
instance is started for the sweep on 127.0.0.1 and stopped after it.

One run = one task. The driver ships this checkout to every node through Ray's
`runtime_env` (`working_dir`, without results, caches, the venv, .git and figures: no
shared filesystem). On the worker the task executes `notebooks/train.ipynb` through
papermill into a fresh temporary folder and returns every file of it (notebook,
`record.json`, `checkpoints/`) as bytes. The driver writes them into `<run-id>/partial/`
and, if the record is complete, moves them up with `lib.sweep.finish` (record last), so a
record exists iff the run is complete, exactly as with the local executor.

CIFAR-10 is read on each worker from its own `CIFAR10_DIR` (a path that must exist on
every node; for the local instance the driver's environment is inherited). We chose a
path over shipping the images through the object store: it is 170 MB once per node by the
same command as on one machine, each node keeps its decoded cache (`SNN_CACHE_DIR`), and
it costs the object store nothing (its default is 30 % of RAM, shared with the results).
Every node alive at the start is asked for its data before any run starts.

Resources per run: `num_cpus` = the run's torch threads, decided as by the local
executor (`lib.sweep.run_params`: the profile's `threads`, else cores / JOBS) or by
`--cpus-per-run`; `num_gpus` = `--gpus-per-run`, else the profile's `resources:
{gpus_per_run: F}`, else 0.25 when the profile's `device` is cuda (four LeNet runs share a
GPU), else 0 (and Ray then hides the GPUs, so `device: auto` trains on the CPU). The
Makefile passes CPUS_PER_RUN and GPUS_PER_RUN as those options.

Failures. A worker or node that dies mid-run: Ray runs the task again (`max_retries`)
elsewhere, in a new temporary folder (a clean start). A run that fails by itself
(bad parameters, NaN loss) returns normally with its failed record: it is written to
`partial/` once and never retried (`retry_exceptions=False`); the next sweep trains it
again, as make does. Ctrl-C on the driver cancels the outstanding tasks; nothing of them
was written, and what finished is complete.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from .. import record, sweep
from . import profiles

EXECUTORS = ("local", "ray")
INSTALL = "pip install -e '.[ray]'  (or: pip install 'ray==2.60.0')"
# Not shipped to the workers: outputs, caches, environments, history (gitignore syntax).
EXCLUDES = ["/results/", "/.venv", "/.git", "/figures/", "/benchmarks/results/", "__pycache__/",
            ".pytest_cache/", ".ruff_cache/", ".ipynb_checkpoints/", "/.whl/", "/.gl/"]
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ExecutorError(RuntimeError):
    """Bad input for the Ray executor, found before any run starts."""


def check_executor(name: str) -> str:
    """`name` if it is an executor that can run here; ExecutorError saying what to do otherwise."""
    if name not in EXECUTORS:
        raise ExecutorError(f"unknown EXECUTOR {name!r}; valid: {', '.join(EXECUTORS)}")
    if name == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ExecutorError(f"EXECUTOR=ray needs Ray, which is not installed; install it: {INSTALL}") from None
    return name


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a cluster address, None for `auto`."""
    if address == "auto":
        return None
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ExecutorError(f"RAY_ADDRESS {address!r} is not host:port, ray://host:port or auto")
    return host.strip("[]"), int(port)


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fail fast if nothing listens at a cluster address (ray.init would retry for a minute)."""
    target = _host_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as err:
        raise ExecutorError(
            f"RAY_ADDRESS {address!r}: nothing answers at {target[0]}:{target[1]} ({err}). Start the cluster "
            "first (`ray start --head` prints its address), or unset RAY_ADDRESS for a local Ray instance."
        ) from None


def resources(profile: profiles.Profile, cpus_per_run: int | None, gpus_per_run: float | None, jobs: int) -> dict:
    """Ray resources of one run of `profile` (see the module docstring), checked."""
    if cpus_per_run is not None and cpus_per_run < 1:
        raise ExecutorError(f"--cpus-per-run must be an integer >= 1, got {cpus_per_run}")
    if gpus_per_run is not None and not 0 <= gpus_per_run:
        raise ExecutorError(f"--gpus-per-run must be >= 0 (a fraction packs runs on a GPU), got {gpus_per_run}")
    threads = cpus_per_run or sweep.run_params(profile, profile.runs[0], Path("."), jobs)["threads"]
    on_cuda = str(profile.params.get("device", "auto")).startswith("cuda")
    gpus = gpus_per_run if gpus_per_run is not None else profile.resources.get("gpus_per_run",
                                                                                0.25 if on_cuda else 0.0)
    return {"num_cpus": threads, "num_gpus": gpus}


# ---------------------------------------------------------------------------
# On the worker.


def train_run(params: dict) -> dict:
    """Execute the training notebook with `params` in a temporary folder; return its files.

    A run that fails by itself returns normally (status from its record, or 'failed' if it
    wrote none): only the death of this process makes Ray run it again.
    """
    import papermill

    repo = Path(__file__).resolve().parents[2]  # the shipped working_dir on a worker
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="snn-run-") as tmp:
        out = Path(tmp)
        status, error = "complete", None
        try:
            papermill.execute_notebook(
                str(repo / "notebooks" / "train.ipynb"), str(out / "train.ipynb"),
                parameters={**params, "output_dir": str(out)}, progress_bar=False, cwd=str(repo),
            )
        except Exception as err:  # noqa: BLE001  the notebook and its record say why
            status, error = "failed", f"{type(err).__name__}"
        files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    return {"files": files, "status": status, "error": error, "seconds": time.perf_counter() - start,
            "host": platform.node(), "node_id": _node_id()}


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def node_data(_: int = 0) -> str:
    """This node's CIFAR-10 folder, or raises DataNotFoundError saying what to do."""
    from .. import data

    return str(data.resolve_data_dir(None))


# ---------------------------------------------------------------------------
# On the driver.


def _write_atomic(path: Path, content: bytes) -> None:
    record.atomic(path, lambda tmp: tmp.write_bytes(content))


def store(profile: profiles.Profile, run: profiles.Run, results: Path, files: dict) -> str:
    """Write a finished task's files as the local executor would leave them; return the run's state."""
    partial = sweep.run_dir(profile, run, results) / "partial"
    shutil.rmtree(partial, ignore_errors=True)
    for name, content in files.items():  # record.json last: it is what marks the run
        if name != "record.json":
            _write_atomic(partial / name, content)
    if "record.json" in files:
        _write_atomic(partial / "record.json", files["record.json"])
    if sweep.state(profile, run, results) == "failed" or "record.json" not in files:
        return sweep.state(profile, run, results)

    try:
        record.load(partial / "record.json", complete=True)
    except record.RecordError:
        return sweep.state(profile, run, results)
    sweep.finish(profile, run, results, partial / "train.ipynb", partial / "record.json", sweep.extras(partial))
    shutil.rmtree(partial, ignore_errors=True)
    return sweep.state(profile, run, results)


def pending(profile: profiles.Profile, results: Path) -> list:
    """The runs the local executor would train: those without a record (complete or stale)."""
    return [r for r in profile.runs if sweep.state(profile, r, results) not in ("complete", "stale")]


def _connect(address: str | None, ray, repo: Path, local_cpus: int | None = None) -> None:
    """ray.init for the sweep: the cluster at `address`, else a local instance on 127.0.0.1."""
    runtime_env = {"working_dir": str(repo), "excludes": EXCLUDES}
    target = _host_port(address) if address and address != "local" else None
    if target and target[0] not in LOOPBACK:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        return
    # A local instance, or a cluster on loopback: Ray registers a node under (and rewrites a
    # loopback address to) this machine's interface address, found by services.get_node_ip_address,
    # even when told _node_ip_address; while starting or joining, that lookup answers 127.0.0.1, so
    # every Ray process of the sweep listens and talks on loopback only.
    services = ray._private.services
    lookup = services.get_node_ip_address
    services.get_node_ip_address = lambda address=None: "127.0.0.1"
    try:
        if target:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False, _node_ip_address="127.0.0.1")
        else:
            # address="local": a new instance even when another Ray runs on this machine (ray.init()
            # would join that one)
            ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False,
                     runtime_env=runtime_env, log_to_driver=False, num_cpus=local_cpus)
    finally:
        services.get_node_ip_address = lookup


def _check_nodes(ray, res: dict) -> None:
    """Before any run: every alive node has CIFAR-10, and some node can hold one run."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n["Alive"]]
    fits = [n for n in nodes if all(n["Resources"].get(k, 0) >= v for k, v in
                                    (("CPU", res["num_cpus"]), ("GPU", res["num_gpus"])) if v)]
    if not fits:
        have = ", ".join(f"{n['NodeManagerAddress']}: {n['Resources'].get('CPU', 0):g} CPU "
                         f"{n['Resources'].get('GPU', 0):g} GPU" for n in nodes)
        raise ExecutorError(f"no node has {res['num_cpus']} CPUs and {res['num_gpus']} GPUs for one run ({have});"
                            " lower --cpus-per-run / --gpus-per-run or add nodes")
    probe = ray.remote(node_data)
    refs = {n["NodeManagerAddress"]: probe.options(num_cpus=0, max_retries=0, scheduling_strategy=
                                                   NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
            for n in nodes}
    missing = []
    for host, ref in refs.items():
        try:
            ray.get(ref)
        except Exception as err:  # noqa: BLE001  a RayTaskError wrapping DataNotFoundError
            missing.append(f"{host}: {getattr(err, 'cause', err)}")
    if missing:
        raise ExecutorError("CIFAR-10 is missing on some nodes (set CIFAR10_DIR before `ray start` there):\n  "
                            + "\n  ".join(missing))


def run_sweep(profile: profiles.Profile, results: Path, address: str | None = None, jobs: int = 1,
              cpus_per_run: int | None = None, gpus_per_run: float | None = None, max_retries: int = 3,
              local_cpus: int | None = None, out=sys.stdout) -> bool:
    """Train every pending run of `profile` as a Ray task; True if all runs end complete.

    `local_cpus` sizes the local instance (default: every core). All input is checked
    (executor, address, resources, data on the nodes) before any run starts.
    """
    check_executor("ray")
    if max_retries < 0:
        raise ExecutorError(f"--max-retries must be >= 0, got {max_retries}")
    if address and address != "local":
        check_address(address)
    res = resources(profile, cpus_per_run, gpus_per_run, jobs)
    todo = pending(profile, results)
    if not todo:
        print(sweep.report(sweep.collect(profile, results))[0], file=out)
        return True

    import ray
    from tqdm import tqdm

    repo = Path(__file__).resolve().parents[2]
    _connect(address, ray, repo, local_cpus)
    task = ray.remote(train_run).options(max_retries=max_retries, retry_exceptions=False, **res)
    refs = {}
    try:
        _check_nodes(ray, res)
        addresses = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()}
        for run in todo:
            params = {**sweep.run_params(profile, run, results, jobs), "threads": res["num_cpus"]}
            refs[task.remote(params)] = run
        with tqdm(total=len(refs), desc=f"{profile.name} on Ray", unit="run", file=out, dynamic_ncols=True) as bar:
            while refs:
                [ref], _ = ray.wait(list(refs), num_returns=1)
                run = refs.pop(ref)
                try:
                    result = ray.get(ref)
                    state = store(profile, run, results, result["files"])
                    node = addresses.get(result["node_id"]) or result["node_id"][:12]
                    line = f"{run.id}: {state} in {result['seconds']:.1f} s on {result['host']} (node {node})"
                except (ray.exceptions.RayError, OSError) as err:  # retries spent, or the task broke
                    line = f"{run.id}: not run: {type(err).__name__}: {str(err).splitlines()[0]}"
                bar.write(line, file=out)
                bar.update()
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref, force=True)
        print(f"interrupted: {len(refs)} runs cancelled; run the sweep again to train them", file=out)
        raise
    finally:
        ray.shutdown()  # disconnects from a cluster; stops the local instance
    text, complete = sweep.report(sweep.collect(profile, results))
    print(text, file=out)
    return complete


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.sweep.ray_executor", description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", nargs="?", help="a name in params/ (quick) or a YAML path")
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                        help="cluster address (default: $RAY_ADDRESS; none: a local Ray instance)")
    parser.add_argument("--jobs", type=int, default=1, help="as JOBS for the local executor: threads = cores / jobs")
    parser.add_argument("--cpus-per-run", type=int, help="CPUs (and torch threads) per run")
    parser.add_argument("--gpus-per-run", type=float, help="GPUs per run, a fraction packs runs "
                        "(default: the profile's resources.gpus_per_run, else 0.25 on cuda)")
    parser.add_argument("--local-cpus", type=int, help="CPUs of the local instance (no RAY_ADDRESS; default: all)")
    parser.add_argument("--max-retries", type=int, default=3, help="reruns of a task whose worker or node died")
    parser.add_argument("--check-executor", metavar="NAME", help="only check that executor NAME can run here")
    args = parser.parse_args(argv)
    try:
        if args.check_executor is not None:
            check_executor(args.check_executor)
            return 0
        if not args.profile:
            parser.error("give a PROFILE")
        profile = profiles.load_profile(args.profile)
        complete = run_sweep(profile, Path(args.results), args.address, args.jobs, args.cpus_per_run,
                             args.gpus_per_run, args.max_retries, args.local_cpus)
    except (ExecutorError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
