"""A study on a real two-node Ray cluster of separate processes survives a killed worker, a preempted worker, a
lost node and a SIGTERM to its driver, and ends with the local executor's results.

The cluster (``rayhelpers.RayCluster``) is a head and a second node started with ``ray start``, each with one CPU,
its own ports, temporary folder and token; it is torn down by process group, never with ``ray stop``.  Runs stop
at exact points (``rayhooks``: after the checkpoint of epoch 1 has been shipped) so every kill lands where the
test says.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rayhelpers import RayCluster
from studyhelpers import make_folder_task

from vptlab.store.runs import study_results
from vptlab.study.runner import run_study
from vptlab.study.spec import load_spec
from vptlab.study.worker import WorkerOptions
from vptlab_testing import tiny_spec

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

HERE = Path(__file__).parent
DRIVER = HERE / "ray_driver.py"


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raycluster")
    make_folder_task(root / "colours")
    path = root / "tiny.toml"
    path.write_text(tiny_spec(f"folder:{root / 'colours'}", "colours", epochs=2, seeds="[1]"))
    return path


@pytest.fixture(scope="module")
def reference(spec_file, tmp_path_factory) -> Path:
    """The same study on the local executor, uninterrupted."""
    out = tmp_path_factory.mktemp("reference")
    options = WorkerOptions(device="cpu", checkpoint_seconds=0)
    run_study(load_spec(spec_file), out, options=options, echo=lambda _: None)
    return out


@pytest.fixture(scope="module")
def hooks(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hooks")


@pytest.fixture(scope="module")
def cluster(hooks):
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    c = RayCluster({"PYTHONPATH": path, "VPTLAB_TEST_HOOKS": str(hooks), "VPTLAB_NO_PROGRESS": "1"})
    try:
        c.start_head(num_cpus=1)
        c.add_node("node2", num_cpus=1)
        yield c
    finally:
        (hooks / "release").touch()
        c.close()


@pytest.fixture
def orders(hooks) -> Path:
    """The hooks folder, emptied of the last test's orders."""
    for path in hooks.iterdir():
        path.unlink()
    return hooks


def results(out: Path) -> dict[str, tuple]:
    """Every run: status, epochs and the metrics the tables report (val for tune runs, test for finals)."""
    return {
        run_id: (
            r["status"],
            r["epochs_done"],
            *(
                round(r["metrics"].get(k, -1.0), 5)
                for k in ("val_top1", "val_loss", "test_top1", "test_loss")
            ),
        )  # fmt: skip
        for run_id, r in study_results(out).items()
    }


def drive(cluster: RayCluster, spec_file: Path, out: Path, *args: str, address: bool = True, env=None):
    cmd = [sys.executable, str(DRIVER), "study", "run", str(spec_file), "--out", str(out), "--executor", "ray",
           "--device", "cpu", "--checkpoint-seconds", "0", *args]  # fmt: skip
    if address:
        cmd += ["--address", cluster.address]
    return subprocess.Popen(cmd, env=env or cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def paused(orders: Path, name: str, proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    """Wait until a run claims pause order ``name``; its worker's pid and its run id."""
    path = orders / f"paused-{name}"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the driver ended before {name}: {proc.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, f"no run paused at {name}"
        time.sleep(0.1)
    pid, run_id = path.read_text().split()
    return int(pid), run_id


def starts(orders: Path) -> dict[str, list[int]]:
    """run id -> the epochs it started from, in order."""
    out: dict[str, list[int]] = {}
    for line in (orders / "starts.log").read_text().splitlines():
        run_id, epoch, *_ = line.split()
        out.setdefault(run_id, []).append(int(epoch))
    return out


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_sigterm_to_the_driver_keeps_the_shipped_checkpoint_and_a_rerun_continues(
    cluster, spec_file, reference, orders, tmp_path
):
    (orders / "pause-head.1").touch()
    (orders / "pause-node2.1").touch()
    proc = drive(cluster, spec_file, tmp_path)
    _, run_id = paused(orders, "head.1", proc)
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc)
    (orders / "release").touch()
    assert code == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err
    run_dir = tmp_path / "runs" / run_id
    assert (run_dir / "checkpoint.pt").is_file() and not (run_dir / "result.json").exists()
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1  # the checkpoint after epoch 1

    for path in orders.iterdir():
        path.unlink()
    (orders / "release").touch()
    code, _, err = finish(drive(cluster, spec_file, tmp_path))
    assert code == 0, err[-3000:]
    assert starts(orders)[run_id] == [1]  # the rerun continued from the shipped checkpoint
    assert results(tmp_path) == results(reference)


def test_a_study_survives_a_killed_worker_a_preempted_worker_and_a_lost_node(
    cluster, spec_file, reference, orders, tmp_path
):
    (orders / "pause-head.1").touch()
    (orders / "pause-node2.1").touch()
    storage = tmp_path / "shared"  # every node of this cluster sees this folder: checkpoints go there
    storage.mkdir()
    proc = drive(
        cluster, spec_file, tmp_path / "out", "--max-retries", "2", "--checkpoint-storage", str(storage)
    )
    head_pid, head_run = paused(orders, "head.1", proc)
    node2_pid, node2_run = paused(orders, "node2.1", proc)
    os.kill(head_pid, signal.SIGKILL)  # a worker killed (out of memory, or by hand)
    os.kill(node2_pid, signal.SIGTERM)  # a worker preempted
    (orders / "pause-node2.2").touch()
    _, lost_run = paused(orders, "node2.2", proc)
    cluster.kill_node("node2")  # the whole second node goes away
    code, _, err = finish(proc)

    assert code == 0, err[-3000:]
    assert "Traceback" not in err
    assert err.count(" lost: ") == 3, err
    assert f"ray on the Ray cluster at {cluster.address} (2 nodes" in err
    runs = starts(orders)
    for run_id in (head_run, node2_run, lost_run):
        assert runs[run_id][0] == 0 and runs[run_id][-1] == 1, runs[run_id]  # retried from epoch 1, not 0
    assert results(tmp_path / "out") == results(reference)
    assert not list(storage.iterdir())  # each run's shared checkpoint folder goes once the run has returned


def test_after_its_retries_a_lost_run_is_recorded_failed_and_the_study_goes_on(
    cluster, spec_file, orders, tmp_path
):
    # no --address while a cluster runs on this machine: vptlab starts an instance of its own, not that one
    (orders / "die").write_text("vpt-deep final 1")
    env = {k: v for k, v in cluster.env().items() if k != "RAY_ADDRESS"}
    code, out, err = finish(drive(cluster, spec_file, tmp_path, "--max-retries", "1", address=False, env=env))
    assert code == 0, err[-3000:]
    assert "ray on a local Ray instance started for this study" in err and "Traceback" not in err
    lost = [line for line in err.splitlines() if " lost: " in line]
    assert len(lost) == 2 and "retrying from" in lost[0] and "recorded as failed" in lost[1], lost
    by_status = {}
    for r in study_results(tmp_path).values():
        by_status.setdefault(r["status"], []).append(r)
    assert [(r["config"]["method"], r["config"]["seed"]) for r in by_status["failed"]] == [("vpt-deep", 1)]
    assert "lost 2 time(s) on Ray" in by_status["failed"][0]["error"]
    assert len(by_status["ok"]) == 6  # every other run finished


CONNECT = """
import sys, ray
from vptlab.errors import UserError
from vptlab.study.executors._ray_connect import connect
from vptlab.study.spec import ExecutorSpec
try:
    print(connect(ray, ExecutorSpec(kind="ray", address=sys.argv[1] or None)))
    print(ray.get(ray.remote(lambda: "task ran").remote()))
except UserError as err:
    print("UserError:", err)
"""


@pytest.mark.parametrize("form", ["host:port", "auto", "RAY_ADDRESS", "ray://"])
def test_every_address_form_joins_the_cluster(cluster, form):
    env = cluster.env()
    address = {"host:port": cluster.address, "auto": "auto", "RAY_ADDRESS": "",
               "ray://": f"ray://127.0.0.1:{cluster.client_port}"}[form]  # fmt: skip
    if form in ("auto", "RAY_ADDRESS"):
        env["RAY_ADDRESS"] = cluster.address
    out = subprocess.run([sys.executable, "-c", CONNECT, address], env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    lines = out.stdout.splitlines()
    assert len(lines) >= 2 and lines[-1] == "task ran", out.stdout + out.stderr[-3000:]
    shown = address if form in ("host:port", "ray://") else cluster.address  # auto: the address it found
    assert lines[-2].startswith(f"the Ray cluster at {shown} ("), lines[-2]
