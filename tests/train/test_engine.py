"""The one training loop's extension points: a stop request mid-epoch, a training transform, extra evaluation sets,
and observers of K runs in one pass."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vptlab.data.base import ImageSet
from vptlab.train import EvalSet, TrainOptions, load_run_model, train_run
from vptlab.train.events import RunEvents
from vptlab.train.linear_grid import train_linear_grid
from vptlab.train.loop import Precision, evaluate


def _rows(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "tuned.safetensors"))


def _stop_after(n: int):
    """A stop request that fires after the ``n``-th optimiser step of the call it is given to."""
    steps = itertools.count(1)
    return lambda: next(steps) == n


def _same_run(a: Path, b: Path, ra: dict, rb: dict) -> None:
    assert _rows(a) == _rows(b)
    assert ra["metrics"] == rb["metrics"] and ra["epochs_done"] == rb["epochs_done"]
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[n], wb[n]) for n in wa)


# (a) a stop request after any optimiser step; the run resumes at that very step
@pytest.mark.parametrize(
    ("method", "after"),
    [
        ("vpt-deep", 6),
        ("full", 4),
        ("linear", 9),
    ],  # 4 steps an epoch: mid-epoch 1, end of epoch 0, mid-epoch 2
)
def test_a_run_stopped_mid_epoch_resumes_to_the_uninterrupted_result(
    method, after, tiny_cfg, toy_task, tmp_path
):
    cfg = tiny_cfg(method, epochs=3, backbone_dropout=0.1 if method == "full" else None)
    whole = train_run(cfg, tmp_path / "whole", task_data=toy_task)
    saved = []

    class Saved(RunEvents):
        def checkpoint_saved(self, run_dir: Path, path: Path, epochs_done: int) -> None:
            saved.append((path.name, epochs_done))

    stopped = train_run(cfg, tmp_path / "split", task_data=toy_task, should_interrupt=_stop_after(after),
                        events=Saved())  # fmt: skip
    assert stopped["status"] == "partial" and stopped["epochs_done"] == (after - 1) // 4
    assert saved == [("checkpoint.pt", stopped["epochs_done"])]
    state = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    where = divmod(after, 4) if after % 4 else (after // 4 - 1, 4)  # (epoch, steps done in it)
    assert (state["epoch"], state["step"]) == where
    rest = train_run(cfg, tmp_path / "split", task_data=toy_task)
    assert rest["status"] == "ok" and not (tmp_path / "split" / "checkpoint.pt").exists()
    _same_run(tmp_path / "split", tmp_path / "whole", rest, whole)


def test_a_linear_grid_stopped_mid_epoch_resumes_bit_identically(tiny_cfg, toy_task, tmp_path):
    cfgs = [tiny_cfg("linear", lr=lr, wd=wd, epochs=3) for lr in (5.0, 0.5) for wd in (0.01, 0.0)]
    whole = train_linear_grid(cfgs, [tmp_path / "whole" / str(i) for i in range(4)], task_data=toy_task)
    dirs = [tmp_path / "split" / str(i) for i in range(4)]
    opts = TrainOptions.make("cpu", progress=False, should_interrupt=_stop_after(5))
    stopped = train_linear_grid(cfgs, dirs, task_data=toy_task, options=opts)
    assert {r["status"] for r in stopped} == {"partial"}
    rest = train_linear_grid(cfgs, dirs, task_data=toy_task)
    for i, (a, b) in enumerate(zip(rest, whole)):
        _same_run(dirs[i], tmp_path / "whole" / str(i), a, b)


# (b) a per-batch training transform on the uint8 pixels, seeded by (seed, epoch, step)
class RandomFlip:
    """Flips each image left-right with probability 1/2, drawing from the generator it is given."""

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def __call__(self, raw: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        self.seen.append((raw.dtype, tuple(raw.shape)))
        flip = torch.rand(len(raw), generator=generator) < 0.5
        out = raw.clone()
        out[flip] = raw[flip].flip(2)  # NHWC: axis 2 is the width
        return out


def test_a_train_transform_augments_reproducibly_and_resumes_exactly(tiny_cfg, toy_task, tmp_path):
    cfg = tiny_cfg("vpt-deep", epochs=3, prompt_length=2)
    flip = RandomFlip()
    first = train_run(cfg, tmp_path / "a", task_data=toy_task, train_transform=flip)
    assert set(flip.seen) == {(torch.uint8, (16, 16, 16, 3))} and len(flip.seen) == 3 * 4
    again = train_run(cfg, tmp_path / "b", task_data=toy_task, train_transform=RandomFlip())
    _same_run(tmp_path / "a", tmp_path / "b", first, again)
    train_run(cfg, tmp_path / "plain", task_data=toy_task)
    assert _rows(tmp_path / "plain")[0]["train_loss"] != _rows(tmp_path / "a")[0]["train_loss"]
    stopped = train_run(cfg, tmp_path / "c", task_data=toy_task, train_transform=RandomFlip(),
                        should_interrupt=_stop_after(7))  # fmt: skip
    assert stopped["status"] == "partial"
    rest = train_run(cfg, tmp_path / "c", task_data=toy_task, train_transform=RandomFlip())
    _same_run(tmp_path / "c", tmp_path / "a", rest, first)


def test_a_linear_run_with_a_transform_trains_on_images_and_a_grid_refuses_it(tiny_cfg, toy_task, tmp_path):
    result = train_run(tiny_cfg("linear"), tmp_path / "run", task_data=toy_task, train_transform=RandomFlip())
    assert result["status"] == "ok" and "linear_features" not in result
    opts = TrainOptions.make("cpu", train_transform=RandomFlip())
    cfgs = [tiny_cfg("linear", lr=lr) for lr in (0.5, 5.0)]
    with pytest.raises(ValueError, match="no train_transform"):
        train_linear_grid(cfgs, [tmp_path / "g0", tmp_path / "g1"], task_data=toy_task, options=opts)


# (c) extra evaluation sets, with an optional logit mask
def _shifted(imageset: ImageSet) -> ImageSet:
    images = np.ascontiguousarray(255 - imageset.images)  # a domain shift: inverted colours
    return ImageSet(images, imageset.labels, manifest="inverted", description="inverted test")


def _masked_top1(model, imageset: ImageSet, data, classes: tuple[int, ...]) -> float:
    from vptlab.train.loop import eval_batches

    hits = 0
    with torch.inference_mode():
        for x, y in eval_batches(imageset, data.mean, data.std, torch.device("cpu")):
            logits = model(x)
            keep = torch.zeros(logits.shape[1], dtype=torch.bool)
            keep[list(classes)] = True
            hits += int((logits.masked_fill(~keep, float("-inf")).argmax(1) == y).sum())
    return 100.0 * hits / len(imageset)


@pytest.mark.parametrize("method", ["vpt-deep", "linear"])
def test_extra_eval_sets_score_the_final_model(method, tiny_cfg, toy_task, tmp_path):
    shifted = _shifted(toy_task.test)
    two = np.isin(toy_task.test.labels, [0, 1])
    subset = toy_task.test.subset(np.flatnonzero(two))
    sets = {"inverted": shifted, "two-class": EvalSet(subset, classes=(0, 1))}
    result = train_run(tiny_cfg(method), tmp_path, task_data=toy_task, eval_sets=sets)
    scores = json.loads((tmp_path / "result.json").read_text())["metrics"]["eval"]
    assert scores == result["metrics"]["eval"] and set(scores) == {"inverted", "two-class"}
    model, _ = load_run_model(tmp_path)
    plain = evaluate(model, shifted, mean=toy_task.mean, std=toy_task.std,
                     precision=Precision.choose(torch.device("cpu"), "fp32"))  # fmt: skip
    assert scores["inverted"]["top1"] == pytest.approx(plain.top1)
    assert scores["inverted"]["loss"] == pytest.approx(plain.loss, rel=1e-5)
    assert scores["two-class"]["top1"] == pytest.approx(_masked_top1(model, subset, toy_task, (0, 1)))


def test_an_eval_set_with_labels_outside_its_classes_is_a_user_error(tiny_cfg, toy_task, tmp_path):
    from vptlab.errors import UserError

    with pytest.raises(UserError, match="eval set 'odd'.*label 2"):
        train_run(tiny_cfg("linear"), tmp_path, task_data=toy_task,
                  eval_sets={"odd": EvalSet(toy_task.test, classes=(0, 1))})  # fmt: skip


# observers see every run of a K-run pass
class Recorder(RunEvents):
    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def run_start(self, run_dir: Path, config: dict, start_epoch: int) -> None:
        self.seen.append(("start", run_dir.name, start_epoch))

    def epoch_end(self, run_dir: Path, row: dict) -> None:
        self.seen.append(("epoch", run_dir.name, row["epoch"]))

    def run_end(self, run_dir: Path, result: dict) -> None:
        self.seen.append(("end", run_dir.name, result["status"]))


def test_observers_see_every_run_of_a_grid_pass(tiny_cfg, toy_task, tmp_path):
    cfgs = [tiny_cfg("linear", lr=lr) for lr in (0.5, 1e6)]  # the second one diverges
    recorder = Recorder()
    opts = TrainOptions.make("cpu", recorder, progress=False)
    results = train_linear_grid(cfgs, [tmp_path / "a", tmp_path / "b"], task_data=toy_task, options=opts)
    assert [r["status"] for r in results] == ["ok", "diverged"]
    assert recorder.seen[:2] == [("start", "a", 0), ("start", "b", 0)]
    assert [e for e in recorder.seen if e[1] == "a"][1:] == [
        ("epoch", "a", 0),
        ("epoch", "a", 1),
        ("end", "a", "ok"),
    ]
    assert ("end", "b", "diverged") in recorder.seen


def test_a_pass_whose_runs_stopped_at_different_places_starts_over(tiny_cfg, toy_task, tmp_path):
    cfgs = [tiny_cfg("linear", lr=lr) for lr in (0.5, 5.0)]
    whole = train_linear_grid(cfgs, [tmp_path / "whole0", tmp_path / "whole1"], task_data=toy_task)
    dirs = [tmp_path / "a", tmp_path / "b"]
    opts = TrainOptions.make("cpu", progress=False, should_interrupt=_stop_after(3))
    train_linear_grid(cfgs, dirs, task_data=toy_task, options=opts)
    (dirs[1] / "checkpoint.pt").unlink()  # one run lost its place: the pass cannot share one position
    recorder = Recorder()
    rest = train_linear_grid(cfgs, dirs, task_data=toy_task, options=TrainOptions.make("cpu", recorder))
    assert ("start", "a", 0) in recorder.seen and ("start", "b", 0) in recorder.seen
    for i in range(2):
        _same_run(dirs[i], tmp_path / f"whole{i}", rest[i], whole[i])
