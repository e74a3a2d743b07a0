"""Run folders: atomic writes, what counts as finished, pruning, the index and the tidy table."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing as mp
import sqlite3

import pytest

from vptlab.errors import UserError
from vptlab.store import load_results
from vptlab.store.index import RunIndex
from vptlab.store.lock import StudyLock
from vptlab.store.runs import (
    discard_result,
    mark_pruned,
    read_run_files,
    run_path,
    study_results,
    write_run_files,
)
from vptlab.store.table import COLUMNS, tidy_row, tidy_rows, to_csv


def result(run_id, status="ok", **extra):
    return {
        "run_id": run_id,
        "status": status,
        "config": {
            "method": "full",
            "task": "cifar",
            "stage": "tune",
            "regime": "standard",
            "seed": 42,
            "lr": 0.001,
            "wd": 0.0,
            "epochs": 10,
        },  # fmt: skip
        "task": {"name": "cifar", "group": "natural", "objective": "classification", "num_classes": 100},
        "data": {"sizes": {"train": 800, "val": 200, "test": 10000}},
        "metrics": {"val_top1": 50.0, "test_top1": 40.0, "test_loss": 2.0},
        "params": {"trainable": 10, "total": 100},
        "seconds": 1.5,
        "epochs_done": 10,
        **extra,
    }


def write(out, run_id, **kw):
    write_run_files(run_path(out, run_id), {"result.json": json.dumps(result(run_id, **kw)).encode()})


def test_only_complete_results_are_read(tmp_path):
    write(tmp_path, "a")
    torn = run_path(tmp_path, "b")
    torn.mkdir(parents=True)
    (torn / "result.json").write_text('{"run_id": "b", "sta')  # a writer killed mid-write (not atomic)
    (run_path(tmp_path, "c")).mkdir()  # a run that never finished
    wrong = run_path(tmp_path, "d")
    write_run_files(wrong, {"result.json": json.dumps(result("other")).encode()})  # not this folder's run
    assert list(study_results(tmp_path)) == ["a"]
    # a study folder's results are its runs/<run_id>/ folders whose result is that run's
    assert [r["run_id"] for r in load_results(tmp_path)] == ["a"]


def test_write_run_files_is_atomic_and_drops_a_stale_checkpoint(tmp_path):
    run_dir = tmp_path / "r"
    write_run_files(
        run_dir, {"checkpoint.pt": b"ck", "metrics.jsonl": b"{}\n", "result.json": b'{"status": "partial"}'}
    )
    assert (run_dir / "checkpoint.pt").read_bytes() == b"ck"
    write_run_files(run_dir, {"metrics.jsonl": b"{}\n{}\n", "result.json": b'{"status": "ok"}'})
    assert not (run_dir / "checkpoint.pt").exists()
    assert set(read_run_files(run_dir)) == {"metrics.jsonl", "result.json"}
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(ValueError):
        write_run_files(run_dir, {"../evil": b""})


def test_mark_pruned_and_discard(tmp_path):
    write(tmp_path, "a", status="partial")
    (run_path(tmp_path, "a") / "checkpoint.pt").write_bytes(b"x")
    pruned = mark_pruned(run_path(tmp_path, "a"), "rung 1")
    assert pruned["status"] == "pruned" and pruned["pruned"] == "rung 1"
    assert not (run_path(tmp_path, "a") / "checkpoint.pt").exists()
    assert study_results(tmp_path)["a"]["status"] == "pruned"
    discard_result(run_path(tmp_path, "a"))
    assert study_results(tmp_path) == {}


def test_the_index_mirrors_the_run_folders_and_is_rebuilt_from_them(tmp_path):
    write(tmp_path, "a")
    write(tmp_path, "b", status="diverged")
    with RunIndex(tmp_path) as index:
        assert index.rebuild() == 2
        assert index.counts() == {"ok": 1, "diverged": 1}
        row = index.rows("run_id = ?", ("a",))[0]
        assert (row["method"], row["lr"], row["test_top1"], row["trainable_params"]) == (
            "full",
            0.001,
            40.0,
            10,
        )
        assert json.loads(row["config_json"])["task"] == "cifar"
    (tmp_path / "index.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"index.sqlite{suffix}").unlink(missing_ok=True)
    with RunIndex(tmp_path) as index:
        assert index.rebuild() == 2
    db = sqlite3.connect(tmp_path / "index.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_tidy_rows_never_show_an_accuracy_for_a_diverged_run():
    ok = tidy_row(result("a"))
    bad = tidy_row(result("b", status="diverged", diverged_at={"epoch": 3}))
    assert list(ok) == list(COLUMNS)
    assert (ok["group"], ok["train_size"], ok["test_top1"]) == ("natural", 800, 40.0)
    assert bad["test_top1"] is None and bad["val_top1"] is None and bad["diverged_at_epoch"] == 3
    rows = list(csv.DictReader(io.StringIO(to_csv(tidy_rows([result("a"), result("b", status="diverged")])))))
    assert [r["status"] for r in rows] == ["ok", "diverged"] and rows[1]["test_top1"] == ""


def _try_lock(path, queue):
    try:
        with StudyLock(path):
            queue.put("locked")
    except UserError as err:
        queue.put(str(err))


def test_the_study_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with StudyLock(tmp_path):
        proc = ctx.Process(target=_try_lock, args=(tmp_path, queue))
        proc.start()
        proc.join(60)
        message = queue.get(timeout=5)
        assert "another 'vptlab study run' is using this study folder" in message and "pid" in message
    proc = ctx.Process(target=_try_lock, args=(tmp_path, queue))
    proc.start()
    proc.join(60)
    assert queue.get(timeout=5) == "locked"


def test_the_tidy_table_carries_every_method_option_in_one_cell(tmp_path):
    from vptlab.train import RunConfig  # the real config form, as result.json holds it

    cfg = RunConfig.of(method="adapter", task="cifar", bottleneck=16).resolved().to_dict()
    row = tidy_row(result("a") | {"config": cfg})
    options = dict(kv.split("=", 1) for kv in row["options"].split(";"))
    assert json.loads(options["bottleneck"]) == 16 and "," not in row["options"]
    assert "lr" not in options and "task" not in options
    assert tidy_row(result("b"))["options"] is None  # a config without options has an empty cell
