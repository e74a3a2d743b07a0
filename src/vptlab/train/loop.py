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
from vptlab.data.ragged import random_crop_reader

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
    transform: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
    read_images: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalised ``(x, y)`` batches in ``order``, read one or two batches ahead in a thread.

    ``transform(i, raw)`` rewrites the ``i``-th batch's uint8 NHWC pixels before normalisation (augmentation),
    in the reading thread.  ``read_images(indices)``, if given, produces the uint8 batch instead of
    ``images[indices]`` (the random crops of a set of whole images: :func:`vptlab.data.ragged.random_crop_reader`)."""
    pin = device.type == "cuda"

    def read(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        # sorted within the batch: sequential reads from a memmap, and the same batch whatever the storage
        idx = np.sort(order[i * batch_size : (i + 1) * batch_size])
        raw = torch.from_numpy(np.ascontiguousarray(read_images(idx) if read_images else images[idx]))
        y = torch.from_numpy(np.ascontiguousarray(labels[idx]))
        if transform is not None:
            raw = transform(i, raw)
        return (raw.pin_memory(), y.pin_memory()) if pin else (raw, y)

    for raw, y in _prefetched(map(read, range(-(-len(order) // batch_size))), prefetch):
        yield normalise(raw, mean, std, device), y.to(device, non_blocking=True)


def normalise(
    raw: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> torch.Tensor:
    """uint8 (or float in [0, 255]) NHWC -> normalised float32 NCHW on ``device`` (converted on the device)."""
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
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(data, FeatureSet):
        return feature_batches(data, order, batch_size)
    return batches(data.images, data.labels, order, batch_size, mean, std, device)


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


@dataclass
class Tally:
    """Running sums of one run over an epoch or an evaluation: cross-entropy (summed over images), hits, images."""

    loss: float = 0.0
    correct: int = 0
    seen: int = 0

    def add(self, loss_sum: float, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.loss += loss_sum
        self.correct += int((logits.argmax(1) == y).sum())
        self.seen += len(y)

    def stats(self) -> EpochStats:
        return EpochStats(self.loss / self.seen, 100.0 * self.correct / self.seen, self.seen)


# The augmentation stream: a generator per (seed, epoch, step), apart from the data order's (seed, epoch).
AUGMENT_STREAM = 0x61756731
TrainTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the training set in ``epoch``: a function of (seed, epoch) only, so a resumed run reads the
    very batches an uninterrupted one reads."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def augment_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    """The generator a train transform draws from for one batch: seeded by (seed, epoch, step), no state."""
    state = np.random.SeedSequence([seed, epoch, step, AUGMENT_STREAM]).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def train_batches(
    data: ImageSet | FeatureSet,
    *,
    seed: int,
    epoch: int,
    batch_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device,
    start_step: int = 0,
    transform: TrainTransform | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The training batches of ``epoch`` from step ``start_step`` on, in the seeded order.

    ``transform(raw_uint8_nhwc, generator)`` augments each image batch before normalisation, drawing from
    :func:`augment_generator` (the same seed gives the same augmentation, a resumed run included); features
    (a linear probe's :class:`FeatureSet`) take no transform."""
    order = epoch_order(seed, epoch, len(data))[start_step * batch_size :]
    if isinstance(data, FeatureSet):
        if transform is not None:
            raise ValueError("precomputed features cannot be augmented; train on images instead")
        return feature_batches(data, order, batch_size)
    hook = None
    if transform is not None:

        def hook(i: int, raw: torch.Tensor) -> torch.Tensor:
            return transform(raw, augment_generator(seed, epoch, start_step + i))

    crops = random_crop_reader(data, seed, epoch)  # FGVC: the reference's random crop + flip, else None
    return batches(
        data.images, data.labels, order, batch_size, mean, std, device, transform=hook, read_images=crops
    )


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
    """One epoch of one model outside a run (upstream pre-training, method tests); raises :class:`Diverged`.

    Runs train through :func:`vptlab.train.engine.train_pass`, which reads the same batches."""
    forward = forward or model
    tally = Tally()
    stream = train_batches(data, seed=seed, epoch=epoch, batch_size=batch_size, mean=mean, std=std,
                           device=precision.device)  # fmt: skip
    for step, (x, y) in enumerate(stream):
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
        tally.add(value * len(y), logits, y)
        if on_step is not None:
            on_step()
    return tally.stats()


def eval_batches(
    data: ImageSet | FeatureSet, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device,
    batch_size: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
    """``data`` in its own order, in evaluation batches."""
    return _batches_of(data, np.arange(len(data)), batch_size or eval_batch_size(device), mean, std, device)


def score(logits: torch.Tensor, y: torch.Tensor, tally: Tally, classes: torch.Tensor | None = None) -> None:
    """Add a batch's summed cross-entropy and hits to ``tally``; ``classes`` (a boolean mask over the logits)
    keeps only those classes in the running (a test set labelled with a subset of the head's classes)."""
    logits = logits.float()
    if classes is not None:
        logits = logits.masked_fill(~classes, float("-inf"))
    tally.add(float(F.cross_entropy(logits, y, reduction="sum")), logits, y)


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
    model.eval()
    tally = Tally()
    for x, y in eval_batches(data, mean, std, precision.device, batch_size):
        with precision.autocast():
            logits = forward(x)
        score(logits, y, tally)
    return tally.stats()
