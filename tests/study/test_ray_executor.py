"""The Ray executor's decisions without a cluster: retries from shipped checkpoints, giving up, addresses, errors.

A fake ``ray`` module runs tasks in-process and lets a test lose any attempt; the real cluster is exercised in
``test_ray_cluster.py`` (marker ``ray``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from studyhelpers import FAKE_SPEC

from vptlab.cli import main
from vptlab.errors import UserError
from vptlab.store.study import StudyStore
from vptlab.study.executors import _ray_connect
from vptlab.study.executors._ray_ship import Inbox
from vptlab.study.executors.ray import RayExecutor
from vptlab.study.spec import ExecutorSpec, load_spec
from vptlab.study.state import Job
from vptlab.study.worker import WorkerOptions
from vptlab.train.config import RunConfig


class RayError(Exception):
    pass


class WorkerCrashedError(RayError):
    pass


class _Ref:
    def __init__(self, fn, args) -> None:
        self.fn, self.args = fn, args


class _Remote:
    def __init__(self, fn) -> None:
        self.fn = fn

    def options(self, **_):
        return self

    def remote(self, *args):
        if isinstance(self.fn, type):  # an actor: its methods return refs to their values
            return _Actor(self.fn(*args))
        return _Ref(self.fn, args)


class _Actor:
    def __init__(self, obj) -> None:
        self.obj = obj

    def __getattr__(self, name):
        method = getattr(self.obj, name)
        return type("M", (), {"remote": staticmethod(lambda *a: _Ref(method, a))})


class FakeRay:
    """Just enough of ``ray``: tasks run when waited for; ``lose`` makes chosen attempts die instead."""

    class exceptions:  # noqa: N801 (module-like)
        RayError = RayError

    def __init__(self, lose) -> None:
        self.lose, self.submitted, self.cancelled = lose, [], []

    def is_initialized(self) -> bool:
        return True

    def cluster_resources(self) -> dict:
        return {"CPU": 1.0}

    def remote(self, fn=None, **_):
        return _Remote(fn) if fn is not None else _Remote

    def wait(self, refs, num_returns, timeout):
        return refs[:1], refs[1:]

    def get(self, ref):
        if ref.fn.__name__ == "ray_task":
            run_fn, job, files, stage1, options, ship = ref.args
            self.submitted.append((job.run_id, ship.serial, dict(files)))
            if self.lose(job, len(self.submitted)):
                # the attempt trains, ships its checkpoint after epoch 1, then its worker dies
                ship.inbox.obj.put(job.run_id, ship.serial, 1, 1, {"metrics.jsonl": b'{"epoch": 0}\n',
                                                               "checkpoint.pt": b"ckpt1"})  # fmt: skip
                raise WorkerCrashedError("The worker died unexpectedly while executing this task.")
        return ref.fn(*ref.args)

    def put(self, value):
        return value

    def cancel(self, ref, force=False):
        self.cancelled.append(ref)


def _job() -> Job:
    return Job(RunConfig(method="full", task="cifar", data="synthetic", epochs=3, warmup_epochs=0, lr=0.1, wd=0.0,
                         seed=1))  # fmt: skip


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def _fake_run(job, run_dir, stage1_dir, options) -> dict:
    """Stands in for ``run_job`` on a worker: records where it started and finishes the run."""
    started = (
        (run_dir / "checkpoint.pt").read_bytes().decode() if (run_dir / "checkpoint.pt").exists() else ""
    )
    result = {"status": "ok", "run_id": job.run_id, "config": job.cfg.to_dict(), "epochs_done": 3,
              "metrics": {}, "started_from": started}  # fmt: skip
    (run_dir / "result.json").write_text(json.dumps(result))
    return result


def _executor(tmp_path, monkeypatch, lose, retries: int = 2):
    ray = FakeRay(lose)
    monkeypatch.setattr("vptlab.study.executors.ray.import_ray", lambda: ray)
    store = StudyStore(tmp_path / "out", writable=True)
    lines: list[str] = []
    spec = ExecutorSpec(kind="ray", max_retries=retries)
    executor = RayExecutor(store, WorkerOptions(device="cpu"), _fake_run, spec, echo=lines.append)
    return executor, ray, store, lines


def test_a_lost_attempt_is_submitted_again_from_the_checkpoint_it_shipped(tmp_path, monkeypatch):
    executor, ray, store, lines = _executor(tmp_path, monkeypatch, lose=lambda job, n: n == 1)
    job = _job()
    executor.submit(job)
    [outcome] = executor.wait()
    assert outcome.result["status"] == "ok"
    assert outcome.result["started_from"] == "ckpt1"  # the retry continued from the shipped checkpoint
    assert [s[2].get("checkpoint.pt") for s in ray.submitted] == [None, b"ckpt1"]
    assert len(lines) == 1 and "attempt 1/3 lost: WorkerCrashedError" in lines[0]
    assert "retrying from its newest checkpoint (1 epoch(s) done)" in lines[0]
    executor.close()


def test_after_max_retries_the_run_is_recorded_failed_with_the_reason(tmp_path, monkeypatch):
    executor, ray, store, lines = _executor(tmp_path, monkeypatch, lose=lambda job, n: True, retries=1)
    job = _job()
    executor.submit(job)
    [outcome] = executor.wait()
    assert len(ray.submitted) == 2 and len(lines) == 2
    assert "no retries left, recorded as failed" in lines[1]
    result = json.loads(outcome.files["result.json"])
    assert result["status"] == outcome.result["status"] == "failed"
    assert result["run_id"] == job.run_id and "lost 2 time(s) on Ray" in result["error"]
    assert outcome.files["checkpoint.pt"] == b"ckpt1"  # the shipped work stays with the run
    executor.close()


def test_a_checkpoint_from_an_attempt_given_up_on_is_never_taken(tmp_path, monkeypatch):
    executor, ray, store, lines = _executor(tmp_path, monkeypatch, lose=lambda job, n: False)
    job = _job()
    executor.submit(job)
    executor.inbox.obj.put(job.run_id, 999, 1, 2, {"metrics.jsonl": b"x\n", "checkpoint.pt": b"stale"})
    executor._collect_checkpoints()
    assert not (store.run_dir(job.run_id) / "checkpoint.pt").exists()
    executor.close()


def test_the_inbox_keeps_the_newest_checkpoint_of_each_run():
    inbox = Inbox()
    inbox.put("a", 1, 2, 1, {"checkpoint.pt": b"mid-epoch"})
    inbox.put("a", 1, 1, 1, {"checkpoint.pt": b"1"})  # late, older: ignored
    inbox.put("b", 3, 1, 1, None)
    assert inbox.take() == {"a": (1, 2, 1, {"checkpoint.pt": b"mid-epoch"}), "b": (3, 1, 1, None)}
    assert inbox.take() == {}


class _InitRecorder:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls, self.error = [], error

    def init(self, **kwargs):
        self.calls.append(kwargs)
        if self.error:
            raise self.error

    def shutdown(self):
        pass

    def cluster_resources(self):
        return {"CPU": 4.0}

    def nodes(self):
        return [{"Alive": True}, {"Alive": False}]


@pytest.mark.parametrize(
    ("address", "env", "expected", "said"),
    [
        (None, None, "local", "a local Ray instance started for this study (4 CPUs)"),
        ("local", "10.0.0.1:6379", "local", "a local Ray instance started for this study (4 CPUs)"),
        (None, "10.0.0.1:6379", None, "the Ray cluster at 10.0.0.1:6379 (1 node, 4 CPUs)"),
        ("10.0.0.2:6379", None, "10.0.0.2:6379", "the Ray cluster at 10.0.0.2:6379 (1 node, 4 CPUs)"),
        ("ray://h:10001", None, "ray://h:10001", "the Ray cluster at ray://h:10001 (1 node, 4 CPUs)"),
    ],
)
def test_which_cluster_is_joined(monkeypatch, address, env, expected, said):
    if env:
        monkeypatch.setenv("RAY_ADDRESS", env)
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray = _InitRecorder()
    assert _ray_connect.connect(ray, ExecutorSpec(kind="ray", address=address)) == said
    assert ray.calls[0]["address"] == expected


def test_a_failed_join_names_the_address_and_what_to_check(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    ray = _InitRecorder(ConnectionError("Failed to connect to Ray cluster at 10.0.0.2:6390"))
    with pytest.raises(UserError) as err:
        _ray_connect.connect(ray, ExecutorSpec(kind="ray", address="10.0.0.2:6390"))
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("cannot join the Ray cluster at 10.0.0.2:6390 (from --address")
    assert "ray status --address 10.0.0.2:6390" in text and "RAY_AUTH_MODE=token" in text
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(UserError, match="must be the cluster's"):
        _ray_connect.connect(ray, ExecutorSpec(kind="ray", address="10.0.0.2:6390"))


def test_ray_flags_need_the_ray_executor_and_valid_values(tmp_path, capsys):
    spec = _write(tmp_path, FAKE_SPEC)
    assert main(["study", "run", str(spec), "--out", str(tmp_path / "o"), "--max-retries", "2"]) == 2
    assert "--max-retries is for the ray executor" in capsys.readouterr().err
    argv = [
        "study",
        "run",
        str(spec),
        "--out",
        str(tmp_path / "o"),
        "--executor",
        "ray",
        "--max-retries",
        "-1",
    ]
    assert main(argv) == 2
    assert "--max-retries must be >= 0, got -1" in capsys.readouterr().err
    bad = _write(tmp_path, FAKE_SPEC + "[executor]\nkind = 'ray'\nmax_retries = -2\n")
    with pytest.raises(UserError, match="executor.max_retries"):
        load_spec(bad)


def test_with_shared_storage_the_worker_writes_the_checkpoint_there_and_sends_a_notice(tmp_path, monkeypatch):
    import sys
    import types

    from vptlab.study.executors._ray_ship import ShipCheckpoints, take_checkpoint

    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(get=lambda value: value))
    inbox = Inbox()
    actor = types.SimpleNamespace(put=types.SimpleNamespace(remote=inbox.put))
    run_dir = tmp_path / "worker-tmp"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"epoch": 0}\n')
    (run_dir / "checkpoint.pt").write_bytes(b"ckpt")
    ShipCheckpoints(actor, "r1", 7, str(tmp_path / "shared")).checkpoint_saved(
        run_dir, run_dir / "checkpoint.pt", 1
    )
    assert inbox.take() == {"r1": (7, 1, 1, None)}  # only a notice travels through Ray
    assert (tmp_path / "shared" / "r1" / "checkpoint.pt").read_bytes() == b"ckpt"
    take_checkpoint(tmp_path / "study" / "r1", "r1", None, str(tmp_path / "shared"))
    assert (tmp_path / "study" / "r1" / "checkpoint.pt").read_bytes() == b"ckpt"
    assert (tmp_path / "study" / "r1" / "metrics.jsonl").read_text() == '{"epoch": 0}\n'
