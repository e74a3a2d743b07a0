"""The inner loops: batches from uint8 arrays (or precomputed features), one training epoch, evaluation.

Images arrive as uint8 ``(N, H, W, 3)`` arrays (memory-mapped from the decoded-image cache) and are normalised on
the fly; a background thread prepares the next batch while the model works on this one.  A linear probe can train
on a :class:`FeatureSet` instead (the frozen backbone's features, computed once): the same order, the same
batches, only the forward pass is the head alone.  On CUDA, training and
evaluation run under bf16 autocast (timm's attention uses PyTorch's fused scaled-dot-product kernel); on the CPU
everything is fp32.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vptlab.data.base import ImageSet
from vptlab.data.ragged import train_transform

# Divergence.  The reference code only caught NaN; but AdamW at a huge lr (FT at lr 50) wrecks the network while
# LayerNorm keeps the loss finite.  So a run also diverges when its epoch-mean training loss stays above
# BLOWUP_FACTOR x ln(num_classes) (ten times a uniform guess) for BLOWUP_EPOCHS epochs in a row, or at the end:
# a transient spike during warm-up may recover, a sustained one does not.
BLOWUP_FACTOR = 10.0
BLOWUP_EPOCHS = 2
# Evaluation batch sizes: on a CPU, batches past ~128 small images no longer fit the caches and get slower per
# image (measured in bench/bench_run.py's notes); an accelerator wants large batches.
EVAL_BATCH_CPU = 128
EVAL_BATCH_ACCELERATOR = 256


def eval_batch_size(device: torch.device) -> int:
    """The evaluation batch size for ``device`` (results do not depend on it beyond float summation order)."""
    return EVAL_BATCH_CPU if device.type == "cpu" else EVAL_BATCH_ACCELERATOR


class Diverged(Exception):
    """A non-finite loss, or one that blew up and stayed up: the run ends with status ``diverged``."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"loss {loss} at epoch {epoch}, step {step}")
        self.epoch, self.step, self.loss = epoch, step, loss


@dataclass(frozen=True)
class Precision:
    device: torch.device
    dtype: torch.dtype | None  # None: no autocast

    @staticmethod
    def choose(device: torch.device, asked: str) -> Precision:
        if asked == "fp32" or (asked == "auto" and device.type != "cuda"):
            return Precision(device, None)
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return Precision(device, None)
        return Precision(device, torch.bfloat16)

    @property
    def name(self) -> str:
        return "bf16-autocast" if self.dtype is not None else "fp32"

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    order: np.ndarray,
    batch_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device,
    prefetch: int = 2,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalised ``(x, y)`` batches in ``order``, read one or two batches ahead in a thread.

    ``transform(indices)``, if given, produces the uint8 batch instead of ``images[indices]`` (the train
    transform of a set that crops at random: :func:`vptlab.data.ragged.train_transform`)."""
    pin = device.type == "cuda"

    def read(start: int) -> tuple[torch.Tensor, torch.Tensor]:
        # sorted within the batch: sequential reads from a memmap, and the same batch whatever the storage
        idx = np.sort(order[start : start + batch_size])
        raw = torch.from_numpy(np.ascontiguousarray(transform(idx) if transform else images[idx]))
        y = torch.from_numpy(np.ascontiguousarray(labels[idx]))
        return (raw.pin_memory(), y.pin_memory()) if pin else (raw, y)

    for raw, y in _prefetched(map(read, range(0, len(order), batch_size)), prefetch):
        yield normalise(raw, mean, std, device), y.to(device, non_blocking=True)


def normalise(
    raw: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> torch.Tensor:
    """uint8 NHWC -> normalised float32 NCHW on ``device`` (the conversion happens on the device)."""
    x = raw.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device).view(1, 3, 1, 1)
    return x.sub_(m).div_(s)


def _prefetched(items: Iterator, depth: int) -> Iterator:
    """Run the producer ``items`` in a thread, ``depth`` items ahead."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    done = object()

    def work() -> None:
        try:
            for item in items:
                q.put(item)
        except BaseException as err:  # surface producer errors in the consumer
            q.put(err)
        q.put(done)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


@dataclass
class FeatureSet:
    """Pre-logit features of an image set, ``(N, D)`` on the run's device, standing in for its images."""

    features: torch.Tensor
    labels: np.ndarray
    manifest: str

    def __len__(self) -> int:
        return len(self.labels)


def feature_batches(
    data: FeatureSet, order: np.ndarray, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(features, y)`` batches in ``order``, each sorted as :func:`batches` sorts its images."""
    labels = torch.from_numpy(np.ascontiguousarray(data.labels)).to(data.features.device)
    for start in range(0, len(order), batch_size):
        idx = torch.from_numpy(np.sort(order[start : start + batch_size])).to(data.features.device)
        yield data.features[idx], labels[idx]


def _batches_of(
    data: ImageSet | FeatureSet,
    order: np.ndarray,
    batch_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(data, FeatureSet):
        return feature_batches(data, order, batch_size)
    return batches(data.images, data.labels, order, batch_size, mean, std, device, transform=transform)


class BlowupWatch:
    """Counts consecutive epochs whose mean training loss is above the blow-up level."""

    def __init__(self, num_classes: int, last_epoch: int) -> None:
        self.level = BLOWUP_FACTOR * math.log(num_classes)
        self.last_epoch = last_epoch
        self.streak = 0

    def check(self, epoch: int, train_loss: float) -> None:
        self.streak = self.streak + 1 if train_loss > self.level else 0
        if self.streak >= BLOWUP_EPOCHS or (self.streak and epoch == self.last_epoch):
            raise Diverged(epoch, -1, train_loss)


@dataclass
class EpochStats:
    loss: float
    top1: float
    images: int


def train_epoch(
    model: nn.Module,
    data: ImageSet | FeatureSet,
    *,
    epoch: int,
    seed: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    set_lr: Callable[[int, int], float],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    precision: Precision,
    forward: Callable | None = None,
    on_step: Callable[[], None] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    label_smoothing: float = 0.0,
) -> EpochStats:
    """One pass over ``data`` in a seeded order (the same for a resumed run); raises :class:`Diverged`."""
    forward = forward or model
    order = np.random.default_rng([seed, epoch]).permutation(len(data))
    total_loss, correct, seen = 0.0, 0, 0
    transform = train_transform(data, seed, epoch)  # random crops + flips of a FGVC train set, else None
    for step, (x, y) in enumerate(
        _batches_of(data, order, batch_size, mean, std, precision.device, transform)
    ):
        set_lr(epoch, step)
        if augment is not None:
            x = augment(x)
        with precision.autocast():
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        value = loss.item()
        if not math.isfinite(value):
            raise Diverged(epoch, step, value)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += value * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        if on_step is not None:
            on_step()
    return EpochStats(total_loss / seen, 100.0 * correct / seen, seen)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    data: ImageSet | FeatureSet,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    precision: Precision,
    batch_size: int | None = None,
    forward: Callable | None = None,
) -> EpochStats:
    """Mean cross-entropy and top-1 (%) over ``data``, in eval mode (the caller restores its training mode)."""
    forward = forward or model
    batch_size = batch_size or eval_batch_size(precision.device)
    model.eval()
    total_loss, correct = 0.0, 0
    order = np.arange(len(data))
    for x, y in _batches_of(data, order, batch_size, mean, std, precision.device):
        with precision.autocast():
            logits = forward(x).float()
        total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    return EpochStats(total_loss / len(data), 100.0 * correct / len(data), len(data))
