"""How much compute a study costs: image-steps per run, and hours from a throughput figure.

An *image-step* is one image through one training step (forward + backward); an *eval image* is one image
through one forward pass.  A run costs ``train images x epochs`` image-steps plus ``eval images x evaluations``
eval images (validation every epoch in the tune stage; test at the study's cadence and after the last epoch).
Hours come from a throughput (images/s) stated on the command line or measured and recorded in
``vptlab/resources/throughput.toml`` for a device, backbone and method kind.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

from vptlab.errors import UserError
from vptlab.train.config import RunConfig

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

# VTAB-1k test-set sizes (the full test splits of the 19 tasks, as in the VTAB release).
VTAB1K_TEST_SIZES = {
    "cifar": 10000, "caltech101": 6084, "dtd": 1880, "oxford_flowers102": 6149, "oxford_iiit_pet": 3669,
    "svhn": 26032, "sun397": 21750, "patch_camelyon": 32768, "eurosat": 5400, "resisc45": 6300,
    "diabetic_retinopathy": 42670, "clevr_count": 15000, "clevr_dist": 15000, "dmlab": 22735, "kitti": 711,
    "dsprites_loc": 73728, "dsprites_ori": 73728, "smallnorb_azi": 12150, "smallnorb_ele": 12150,
}  # fmt: skip
# Eval images per second relative to training images per second when no eval figure is recorded
# (a forward pass without backward is roughly a third of a training step's work).
EVAL_SPEEDUP = 3.0


def method_kind(method: str) -> str:
    """Which throughput figure a method uses (``Method.cost``): gradients through all weights ("full"), through
    a frozen backbone ("frozen"), or the head only ("linear")."""
    from vptlab.methods import get_method

    return get_method(method).cost


@dataclass(frozen=True)
class Cost:
    """Image-steps (training) and eval images (forward only) of some runs."""

    train: int = 0
    eval: int = 0
    eval_known: bool = True  # False when a test-set size was unknown and its evaluations are not counted

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.train + other.train, self.eval + other.eval, self.eval_known and other.eval_known)

    @property
    def total(self) -> int:
        return self.train + self.eval


def split_sizes(cfg: RunConfig, num_classes: int | None) -> tuple[int | None, int | None]:
    """(train, val) sizes of a run's data regime and stage, without decoding any image."""
    kind, _, value = cfg.regime.partition(":")
    if kind == "standard":
        folder = folder_sizes(cfg.data)
        train, val = (folder["train"], folder["val"]) if folder else (800, 200)
    elif kind == "kshot":
        if num_classes is None:
            return None, None
        train = val = int(value) * num_classes
    elif kind == "fewshot":  # K per class; the source's whole val split (final: the K per class alone)
        if num_classes is None:
            return None, None
        train, val = int(value) * num_classes, (folder_sizes(cfg.data) or {"val": 200})["val"]
        return (train, 0) if cfg.stage == "final" else (train, val)
    else:
        train, val = int(value), int(value) // 4
    return (train + val, 0) if cfg.stage == "final" else (train, val)


def test_size(source: str, task: str) -> int | None:
    """The task's test-set size where it is known without decoding images (VTAB-1k, synthetic, folders)."""
    if source.startswith("vtab1k:"):
        return VTAB1K_TEST_SIZES.get(task)
    if source.startswith("folder:"):
        return (folder_sizes(source) or {}).get("test")
    if source == "synthetic":
        try:
            from vptlab.data import synthetic
        except ImportError:
            return None
        sizes = getattr(synthetic, "SPLIT_SIZES", None)
        return sizes.get("test") if isinstance(sizes, dict) else None
    return None


@functools.cache
def folder_sizes(source: str) -> dict[str, int] | None:
    """Split sizes of a ``folder:PATH`` source (its file lists only), None for other sources or on error."""
    if not source.startswith("folder:"):
        return None
    from vptlab.data.sources import parse_source

    try:
        from vptlab.data.folders import parse_options, read_folder

        src = parse_source(source)
        folder = read_folder(src.path, parse_options(src.options))
    except UserError:
        return None
    return {name: len(items) for name, items in folder.splits.items()}


def num_classes(source: str, task: str) -> int | None:
    from vptlab.study._parse import known_task_infos

    info = known_task_infos(source).get(task)
    if info is None and source.startswith("folder:"):
        return _folder_classes(source)
    return info.num_classes if info else None


@functools.cache
def _folder_classes(source: str) -> int | None:
    from vptlab.data.sources import list_tasks

    try:
        return list_tasks(source)[0].num_classes
    except (UserError, IndexError):
        return None


def run_cost(cfg: RunConfig, epochs: int | None = None, test_every: int | None = None) -> Cost:
    """The cost of training ``cfg`` for ``epochs`` (default: its whole schedule)."""
    epochs = cfg.epochs if epochs is None else epochs
    train, val = split_sizes(cfg, num_classes(cfg.data, cfg.task))
    test = test_size(cfg.data, cfg.task)
    if train is None:
        return Cost(0, 0, False)
    every = cfg.eval_test_every if test_every is None else test_every
    finished = epochs >= cfg.epochs
    test_evals = (epochs // every if every else 0) + (
        1 if finished and (not every or cfg.epochs % every) else 0
    )
    evals = (val or 0) * epochs + (test or 0) * test_evals
    return Cost(train * epochs, evals, test is not None or test_evals == 0)


@dataclass(frozen=True)
class Throughput:
    """Images per second for training and evaluation, and where the figure comes from."""

    train: float
    eval: float
    source: str

    def hours(self, cost: Cost) -> float:
        return (cost.train / self.train + cost.eval / self.eval) / 3600.0


def stated_throughput(img_per_s: float) -> Throughput:
    return Throughput(img_per_s, img_per_s * EVAL_SPEEDUP, f"stated: {img_per_s:g} img/s (eval assumed x3)")


def measured_throughput(
    device: str, backbone: str, kind: str, image_size: int | None = None
) -> Throughput | None:
    """The recorded figure for this device, backbone and method kind, or None when nothing was measured.

    A figure recorded for an architecture (``vit_base_patch16_224``) serves every pretrained tag of it
    (``vit_base_patch16_224.augreg_in21k``); one recorded with an ``image_size`` serves only that size.
    """
    names = {backbone, backbone.split(".")[0]}
    for fig in throughput_table():
        if fig.get("device") != device or fig.get("backbone") not in names or fig.get("kind") != kind:
            continue
        if image_size is not None and fig.get("image_size", image_size) != image_size:
            continue
        train = float(fig["train_img_per_s"])
        eval_ = float(fig.get("eval_img_per_s") or train * EVAL_SPEEDUP)
        note = fig.get("source", "resources/throughput.toml")
        return Throughput(train, eval_, f"measured {train:g} img/s train, {eval_:g} eval ({note})")
    return None


def throughput_table() -> list[dict[str, Any]]:
    """Every ``[[figure]]`` of ``vptlab/resources/throughput.toml`` (empty if the file has none)."""
    try:
        text = resources.files("vptlab.resources").joinpath("throughput.toml").read_text()
    except FileNotFoundError:
        return []
    return list(tomllib.loads(text).get("figure", []))


def measured_devices() -> list[str]:
    return sorted({str(f.get("device")) for f in throughput_table()})


def fmt_count(n: float) -> str:
    """1234567 -> '1.23M'."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}" if not math.isnan(n) else "?"
