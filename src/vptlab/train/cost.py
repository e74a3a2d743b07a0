"""A run's cost profile: what the tuned model costs to store, to run and to train (``result.json``'s ``cost``).

Counted (exact for the model the run built):

- ``trainable_params`` (with the head), ``trainable_params_without_head``, ``total_params``;
- ``tuned_bytes``: the bytes of the tuned tensors (what ``tuned.safetensors`` holds, less its small header);
- ``flops_per_image``: forward FLOPs of one image, prompt tokens included, counted by
  :class:`torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per multiply-add, matrix products and convolutions
  only: norms, softmax and activations are not counted; papers quoting "GFLOPs" for ViT-B/16 (17.6) count
  multiply-adds, half this number);
- ``ppt``: V-PETL Bench's performance-parameter trade-off, ``accuracy x exp(-log10(P / 1e7 + 1))`` with P the
  trainable parameters (head included) and accuracy the run's test top-1 (val top-1 when there is no test
  score; ``ppt_accuracy`` says which).

Measured after training by a short probe on the run's own images and device, for finished (``ok``) runs:

- ``train_images_per_s``: forward, backward and optimiser step at the run's batch size (the optimiser built as
  the run builds it, with lr 0 so the tuned weights do not change), after one warm-up step;
- ``inference_images_per_s``: eval-mode forward at the evaluation batch size, after one warm-up batch;
- ``peak_memory_bytes`` during the training probe, with ``peak_memory_kind``: ``cuda_allocator_peak``
  (``torch.cuda.max_memory_allocated``) on a GPU; on a CPU ``process_peak_rss`` (the process's peak resident
  set during the probe: Linux resets it first through ``/proc/self/clear_refs``; it includes everything the
  process holds, data and all) or ``process_peak_rss_since_start`` where the reset is not possible.

Runs that compute the same thing per step (the same method, options, backbone, image size, batch size, classes,
device and precision: the points of an lr x wd grid, the seeds of a final config) share one probe within a process:
the profile's ``measured_by`` names the run whose probe it was.  (On a 2-core CPU one probe of vptlab-tiny took
0.2-0.3 epochs of a vpt-deep or full run on ``count``, and 4 epochs of a linear probe trained on cached features:
``bench/bench_cost_probe.py``, BENCHMARKS.md.)

A probe never decides a run's outcome: if it fails (an out-of-memory error on a crowded GPU), ``cost`` records
the error and the counted parts.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vptlab.data.base import ImageSet, TaskData
from vptlab.train.loop import Precision, eval_batch_size, normalise

PPT_SCALE = 1e7
TRAIN_STEPS = 3
INFER_BATCHES = 2
# Config fields that do not change what one step computes: runs differing only in them share a probe.
_SAME_STEP = ("lr", "wd", "seed", "epochs", "warmup_epochs", "schedule", "eval_test_every", "stage", "split_seed",
              "regime", "ft_lr", "ft_wd", "data", "task", "reference_optimizer")  # fmt: skip
_PROBES: dict[str, dict[str, Any]] = {}
_PROBES_KEPT = 64


def ppt_score(accuracy: float, trainable_params: int) -> float:
    """V-PETL Bench's PPT: ``accuracy x exp(-log10(P / 1e7 + 1))`` (accuracy in percent)."""
    return float(accuracy * math.exp(-math.log10(trainable_params / PPT_SCALE + 1.0)))


def param_profile(model: nn.Module) -> dict[str, int]:
    """Trainable parameters with and without the head, all parameters, and the tuned tensors' bytes."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    head_ids = {id(p) for p in model.get_classifier().parameters()}
    return {
        "trainable_params": sum(p.numel() for p in trainable),
        "trainable_params_without_head": sum(p.numel() for p in trainable if id(p) not in head_ids),
        "total_params": sum(p.numel() for p in model.parameters()),
        "tuned_bytes": sum(p.numel() * p.element_size() for p in trainable),
    }


def _cpu_sdpa_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any) -> int:
    """The CPU fused attention kernel, counted as the two batched products it computes."""
    b, h, s_q, d = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    return 2 * b * h * s_q * s_k * d + 2 * b * h * s_q * s_k * d_v


def _custom_flop_formulas() -> dict:
    cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {cpu_sdpa: _cpu_sdpa_flops} if cpu_sdpa is not None else {}


def count_flops(model: nn.Module, image_size: int, device: torch.device | str = "cpu") -> int:
    """Forward FLOPs of one ``image_size`` image through ``model`` in eval mode (prompt tokens included)."""
    was_training = model.training
    trainable = [p for p in model.parameters() if p.requires_grad]
    model.eval()
    x = torch.zeros(1, 3, image_size, image_size, device=device)
    counter = FlopCounterMode(display=False, custom_mapping=_custom_flop_formulas())
    try:
        for p in trainable:  # the counter's module tracker hooks tensors that require grad; none need it here
            p.requires_grad_(False)
        with counter, torch.no_grad():
            model(x)
    finally:
        for p in trainable:
            p.requires_grad_(True)
        model.train(was_training)
    return int(counter.get_total_flops())


class _PeakMemory:
    """The peak memory of a block of work: CUDA's allocator peak, or the process's peak RSS on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> _PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = "cuda_allocator_peak"
        else:
            self.kind = "process_peak_rss" if _reset_peak_rss() else "process_peak_rss_since_start"
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.bytes = int(torch.cuda.max_memory_allocated(self.device))
        else:
            self.bytes = _peak_rss()


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: VmHWM := current RSS
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step: Callable[[], None], repeats: int, device: torch.device) -> float:
    """Seconds for ``repeats`` calls of ``step`` after one warm-up call."""
    step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    _sync(device)
    return time.perf_counter() - start


def _batch(
    images: ImageSet, size: int, data: TaskData, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    n = min(size, len(images))
    raw = torch.from_numpy(np.array(images.images[:n]))  # a copy: memmaps are read-only
    return normalise(raw, data.mean, data.std, device), torch.from_numpy(images.labels[:n]).to(device)


def measure_throughput(
    model: nn.Module,
    data: TaskData,
    *,
    batch_size: int,
    optimizer_kind: str,
    train_mode: Callable[[nn.Module], None],
    precision: Precision,
) -> dict[str, Any]:
    """Training and inference images/s and the training peak memory, measured on the run's own images."""
    from vptlab.train.optim import build_optimizer

    device = precision.device
    x, y = _batch(data.train, batch_size, data, device)
    optimizer, _ = build_optimizer(
        model, optimizer_kind, 0.0, 0.0
    )  # lr 0: every step leaves weights as they are

    def train_step() -> None:
        with precision.autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if all(torch.isfinite(g).all() for g in grads):  # 0 x inf would be nan: never step on such grads
            optimizer.step()

    train_mode(model)
    with _PeakMemory(device) as peak:
        train_seconds = _timed(train_step, TRAIN_STEPS, device)
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    images = data.test if len(data.test) else data.train
    xi, _ = _batch(images, eval_batch_size(device), data, device)

    def infer_step() -> None:
        with torch.inference_mode(), precision.autocast():
            model(xi)

    infer_seconds = _timed(infer_step, INFER_BATCHES, device)
    return {
        "train_images_per_s": round(TRAIN_STEPS * len(x) / train_seconds, 2),
        "inference_images_per_s": round(INFER_BATCHES * len(xi) / infer_seconds, 2),
        "train_batch": len(x),
        "inference_batch": len(xi),
        "peak_memory_bytes": peak.bytes,
        "peak_memory_kind": peak.kind,
        "device": str(device),
    }


def _ppt(profile: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    for key in ("test_top1", "val_top1"):
        if metrics.get(key) is not None:
            return {
                "ppt": round(ppt_score(metrics[key], profile["trainable_params"]), 4),
                "ppt_accuracy": key,
            }
    return {}


def cost_profile(
    model: nn.Module,
    data: TaskData,
    *,
    image_size: int,
    metrics: dict[str, Any],
    measure: dict[str, Any] | None = None,
    probe_key: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The counted profile of ``model``; ``measure`` (keyword arguments of :func:`measure_throughput`) adds the
    measured part, reused from an earlier run with the same ``probe_key`` ``(key, run_id)`` in this process."""
    device = next(model.parameters()).device
    profile: dict[str, Any] = param_profile(model)
    profile["flops_per_image"] = count_flops(model, image_size, device)
    profile.update(_ppt(profile, metrics))
    if measure is not None:
        key, run_id = probe_key or (None, None)
        if key is not None and key in _PROBES:
            profile.update(_PROBES[key])
        else:
            measured = {**measure_throughput(model, data, **measure), "measured_by": run_id}
            profile.update(measured)
            if key is not None:
                _PROBES[key] = measured
                while len(_PROBES) > _PROBES_KEPT:
                    _PROBES.pop(next(iter(_PROBES)))
    return profile


def probe_key(cfg: Any, num_classes: int, device: torch.device) -> str:
    """What decides a probe's numbers: the config less what does not change one step, the classes, the device."""
    from vptlab._io import stable_hash

    same = {k: v for k, v in cfg.to_dict().items() if k not in _SAME_STEP}
    return stable_hash({"config": same, "classes": num_classes, "device": str(device)})


def run_cost(
    model: nn.Module | None,
    data: TaskData | None,
    cfg: Any,
    result: dict[str, Any],
    device: torch.device,
    out: Path,
) -> dict[str, Any] | None:
    """The cost profile of a run ending with ``result``; called by the run when it writes ``result.json``.

    A run that trained its own model hands it over; one trained in a shared pass (a linear grid) is rebuilt
    from its saved weights.  Nothing for a run without a model or data (it failed before building them).
    """
    from vptlab.methods import get_method

    if data is None:
        return None
    try:
        if model is None:
            model = _rebuild(cfg, data, out, device)
            if model is None:
                return None
        method = get_method(cfg.method)
        measure = None
        if result["status"] == "ok":
            measure = {
                "batch_size": cfg.batch_size,
                "optimizer_kind": method.optimizer,
                "train_mode": method.train_mode,
                "precision": Precision.choose(device, cfg.precision),
            }
        key = (probe_key(cfg, data.info.num_classes, device), result["run_id"])
        return cost_profile(model, data, image_size=cfg.image_size, metrics=result["metrics"], measure=measure,
                            probe_key=key)  # fmt: skip
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # a probe must never lose a finished run (e.g. OOM on a shared GPU)
        return {"error": f"{type(err).__name__}: {err}"}


def _rebuild(cfg: Any, data: TaskData, out: Path, device: torch.device) -> nn.Module | None:
    from vptlab.train.model import TUNED_FILE, build_model, load_tuned

    if not (out / TUNED_FILE).is_file():
        return None
    model, _ = build_model(cfg, data.info.num_classes)
    load_tuned(model, out / TUNED_FILE)
    return model.to(device)
