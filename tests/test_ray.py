"""The Ray executor (lib.sweep.ray_executor) on a real 2-node Ray cluster on 127.0.0.1, no mocks.

The cluster (ray.cluster_utils.Cluster, 1 CPU per node) is started once for the module and
shut down by it. Every Ray process is kept on loopback: nodes get node_ip_address 127.0.0.1,
Ray's node-address lookup answers 127.0.0.1 in this process, and the driver joins a
loopback address as 127.0.0.1 (lib.sweep.ray_executor does that).
"""

import dataclasses
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from lib import record, sweep
from lib.sweep import profiles, ray_executor

REPO = Path(__file__).resolve().parents[1]
TINY = {"epochs": 1, "num_steps": 2, "train_size": 256, "val_size": 128, "test_size": 128, "batch_size": 64,
        "threads": 1}
TIMING = ("train_seconds", "seconds")  # differ between any two runs by design (as do host, started, wall_seconds)


def tiny_profile(tmp_path, name, schedules):
    sigma0 = {"baseline": [], **{s: [1.0e-6] for s in schedules}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**TINY, "grid": {"seeds": [0], "sigma0": sigma0}}))
    return profiles.load_profile(str(path))


def env(**extra):
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


# ---------------------------------------------------------------------------
# Bad input: before any Ray process starts.


def test_unknown_executor_and_missing_ray_are_clear_errors(tmp_path):
    with pytest.raises(ray_executor.ExecutorError, match=r"unknown EXECUTOR 'nonsense'; valid: local, ray"):
        ray_executor.check_executor("nonsense")
    assert ray_executor.main(["--check-executor", "nonsense"]) == 2
    # Ray hidden from a fresh interpreter, as on a machine without the extra
    hide = ("import sys; sys.modules['ray'] = None; from lib.sweep import ray_executor as r; "
            "sys.exit(r.main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", hide, "smoke", "--results", str(tmp_path)], env=env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "EXECUTOR=ray needs Ray" in done.stderr and "pip install" in done.stderr
    local = subprocess.run([sys.executable, "-c", hide, "--check-executor", "local"], env=env(), timeout=60)
    assert local.returncode == 0  # the local executor needs no Ray
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_cluster_address_where_nothing_listens_fails_within_seconds(tmp_path, capsys):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    assert ray_executor.main(["smoke", "--results", str(tmp_path), "--address", f"127.0.0.1:{port}"]) == 2
    assert time.perf_counter() - start < 10
    assert f"nothing answers at 127.0.0.1:{port}" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    with pytest.raises(ray_executor.ExecutorError, match="not host:port"):
        ray_executor.check_address("headnode")
    assert ray_executor._host_port("ray://10.0.0.7:10001") == ("10.0.0.7", 10001)
    assert ray_executor._host_port("auto") is None


def test_resources_per_run_follow_the_local_executor(monkeypatch):
    monkeypatch.setattr(sweep.os, "cpu_count", lambda: 8)
    runs = (profiles.Run("baseline", 0.0, 0),)

    def profile(**params):  # built directly: a cuda profile is not parsed on a machine without CUDA
        return profiles.Profile("p", params, runs, (profiles.Variant("", "", "", params),))

    assert ray_executor.resources(profile(threads=1), None, None, 4) == {"num_cpus": 1, "num_gpus": 0.0}
    assert ray_executor.resources(profile(), None, None, 2)["num_cpus"] == 4  # 8 cores / 2 jobs
    on_cuda = profile(device="cuda")
    assert ray_executor.resources(on_cuda, 2, None, 1) == {"num_cpus": 2, "num_gpus": 0.25}
    assert ray_executor.resources(on_cuda, None, 0.5, 8)["num_gpus"] == 0.5
    packed = dataclasses.replace(on_cuda, resources={"gpus_per_run": 0.125})  # the profile's, below the option
    assert ray_executor.resources(packed, None, None, 1)["num_gpus"] == 0.125
    assert ray_executor.resources(packed, None, 0.5, 1)["num_gpus"] == 0.5
    with pytest.raises(ray_executor.ExecutorError, match="--cpus-per-run"):
        ray_executor.resources(on_cuda, 0, None, 1)


def test_store_moves_a_complete_run_up_record_last_and_keeps_a_failed_one_in_partial(tmp_path):
    profile = profiles.parse_profile("p", {"epochs": 1, "grid": {"seeds": [0], "sigma0": {"baseline": []}}})
    run = profile.runs[0]
    params = {"schedule": "baseline", "sigma0": 0.0, "seed": 0, "epochs": 1}
    row = {"epoch": 1, "checkpoint": "checkpoints/epoch-001.pt"}
    complete = {"status": "complete", "params": params, "epochs": [row]}
    files = {"train.ipynb": b"{}", "checkpoints/epoch-001.pt": b"w", "record.json": json.dumps(complete).encode()}
    assert ray_executor.store(profile, run, tmp_path, files) == "complete"
    folder = sweep.run_dir(profile, run, tmp_path)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "checkpoints/epoch-001.pt", "record.json", "train.ipynb"]
    failed = {**complete, "status": "failed", "reason": "NaN loss"}
    other = tmp_path / "again"
    assert ray_executor.store(profile, run, other, {**files, "record.json": json.dumps(failed).encode()}) == "failed"
    assert not (sweep.run_dir(profile, run, other) / "record.json").exists()
    assert (sweep.run_dir(profile, run, other) / "partial" / "record.json").is_file()


# ---------------------------------------------------------------------------
# A real cluster.


@pytest.fixture(scope="module")
def cluster(cifar10_dir, cache_dir):
    pytest.importorskip("ray")
    import ray
    import ray._private.services as services
    from ray.cluster_utils import Cluster

    patch = pytest.MonkeyPatch()
    patch.setenv("CIFAR10_DIR", cifar10_dir)  # the nodes' environment: data on every node
    patch.setenv("SNN_CACHE_DIR", cache_dir)
    patch.setattr(services, "get_node_ip_address", lambda address=None: "127.0.0.1")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                      "include_dashboard": False})
    try:
        c.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        patch.undo()


def epoch_rows(path):
    rec = record.load(path, complete=True)
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rec["epochs"]], rec


@pytest.mark.slow
def test_ray_records_equal_the_local_executors(cluster, tmp_path):
    profile = tiny_profile(tmp_path, "tiny", ["linear"])
    out = io.StringIO()
    assert ray_executor.run_sweep(profile, tmp_path / "ray", cluster.address, out=out)
    text = out.getvalue()
    for run in profile.runs:
        assert f"{run.id}: complete in " in text
        sweep.execute(profile, run, tmp_path / "local", jobs=1)
        ray_folder = sweep.run_dir(profile, run, tmp_path / "ray")
        local_folder = sweep.run_dir(profile, run, tmp_path / "local")
        ray_rows, ray_record = epoch_rows(ray_folder / "record.json")
        local_rows, local_record = epoch_rows(local_folder / "record.json")
        assert ray_rows == local_rows  # bit-identical: same seed, threads, machine
        assert {**ray_record["params"], "output_dir": ""} == {**local_record["params"], "output_dir": ""}
        files = lambda f: sorted(str(p.relative_to(f)) for p in f.rglob("*") if p.is_file())  # noqa: E731
        assert files(ray_folder) == files(local_folder)
        # the worker ran the notebook of the code Ray shipped, not this checkout
        notebook = json.loads((ray_folder / "train.ipynb").read_text())
        assert "runtime_resources" in notebook["metadata"]["papermill"]["input_path"]
    assert "2 of 2 runs complete" in text


def _records(profile, results):
    return {r.id: (sweep.run_dir(profile, r, results) / "record.json").stat().st_mtime_ns
            for r in profile.runs if (sweep.run_dir(profile, r, results) / "record.json").is_file()}


@pytest.mark.slow
def test_a_killed_driver_loses_nothing_and_a_rerun_trains_only_the_missing_runs(cluster, tmp_path):
    profile = tiny_profile(tmp_path, "resume", ["linear", "constant"])  # 3 runs on 2 CPUs
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "lib.sweep.ray_executor", str(tmp_path / "resume.yaml"), "--results", str(results),
           "--address", cluster.address]
    log = tmp_path / "driver.log"
    driver = subprocess.Popen(cmd, env=env(), stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not _records(profile, results) and time.time() < deadline and driver.poll() is None:
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = _records(profile, results)
    assert 1 <= len(before) < len(profile.runs), log.read_text()
    for rid in before:
        record.load(sweep.run_dir(profile, profile.run(rid), results) / "record.json", complete=True)
    again = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    trained = {r.id for r in profile.runs if f"{r.id}: complete in " in again.stdout}
    assert trained == {r.id for r in profile.runs} - set(before)
    after = _records(profile, results)
    assert set(after) == {r.id for r in profile.runs}
    assert all(after[rid] == mtime for rid, mtime in before.items())  # finished runs untouched


def _task_pids():
    """Worker processes running a run: Ray titles them after the task (`ray::train_run`)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"ray::train_run" in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:  # the process ended meanwhile
            pass
    return pids


@pytest.mark.slow
def test_a_killed_worker_and_a_removed_node_still_give_every_run_once(cluster, tmp_path):
    """Last in this module: it removes the cluster's second node."""
    profile = tiny_profile(tmp_path, "chaos", ["linear"])
    results = tmp_path / "results"
    out = io.StringIO()
    outcome = {}
    driver = threading.Thread(target=lambda: outcome.update(
        ok=ray_executor.run_sweep(profile, results, cluster.address, out=out)))
    driver.start()
    deadline = time.time() + 120
    while len(_task_pids()) < 2 and time.time() < deadline:  # both runs started, one per node
        time.sleep(0.1)
    pids = _task_pids()
    assert len(pids) == 2, pids
    os.kill(pids[0], signal.SIGKILL)  # a worker process dies mid-run
    time.sleep(1)
    [node] = cluster.worker_nodes
    cluster.remove_node(node)  # and a whole node
    driver.join(timeout=400)
    assert not driver.is_alive() and outcome["ok"], out.getvalue()
    text = out.getvalue()
    for run in profile.runs:
        assert text.count(f"{run.id}: ") == 1, text  # finished once, written once
        epoch_rows(sweep.run_dir(profile, run, results) / "record.json")
        assert not (sweep.run_dir(profile, run, results) / "partial").exists()


@pytest.mark.slow
def test_a_local_instance_stays_on_loopback():
    ray = pytest.importorskip("ray")
    from pathlib import Path

    ray_executor._connect(None, ray, Path(ray_executor.__file__).resolve().parents[2], local_cpus=1)
    try:
        # without the lookup answering 127.0.0.1, Ray registers the node under the interface address
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        assert ray.get(ray.remote(lambda: ray.util.get_node_ip_address()).remote()) == "127.0.0.1"
    finally:
        ray.shutdown()
