"""The data types every part of vptlab speaks: a task's description, an image set, and a task's splits.

Images are held as uint8 arrays already resized to the model's input size (``(N, H, W, 3)``, often a
``np.memmap`` from the decoded-image cache); normalisation happens on the fly in :func:`to_tensor`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from vptlab.errors import UserError

if TYPE_CHECKING:
    import torch

GROUPS = ("natural", "specialized", "structured")
OBJECTIVES = ("classification", "structured")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TaskInfo:
    """What a task is: its VTAB group, its objective (task disparity) and its number of classes."""

    name: str
    group: str
    objective: str
    num_classes: int

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise UserError(f"task {self.name!r}: group must be one of {GROUPS}, got {self.group!r}")
        if self.objective not in OBJECTIVES:
            raise UserError(
                f"task {self.name!r}: objective must be one of {OBJECTIVES}, got {self.objective!r}"
            )
        if self.num_classes < 2:
            raise UserError(f"task {self.name!r}: num_classes must be >= 2, got {self.num_classes}")


def manifest_of(members: list[str] | np.ndarray, labels: np.ndarray) -> str:
    """A stable hash of an ordered member list and its labels: the identity of a split."""
    h = hashlib.sha256()
    for m, y in zip(members, labels.tolist()):
        h.update(f"{m}\t{int(y)}\n".encode())
    return h.hexdigest()[:16]


@dataclass
class ImageSet:
    """Images (uint8, ``(N, H, W, 3)``, possibly memory-mapped) with integer labels and a manifest hash."""

    images: np.ndarray
    labels: np.ndarray
    manifest: str
    description: str = ""

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(
                f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}"
            )
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.labels = np.asarray(self.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def subset(self, indices: np.ndarray, description: str = "") -> ImageSet:
        """The images at ``indices`` (in that order); the manifest follows the parent's and the indices."""
        indices = np.asarray(indices, dtype=np.int64)
        manifest = manifest_of([f"{self.manifest}:{i}" for i in indices.tolist()], self.labels[indices])
        return ImageSet(self.images[indices], self.labels[indices], manifest, description or self.description)

    @staticmethod
    def concat(sets: list[ImageSet], description: str = "") -> ImageSet:
        images = np.concatenate([s.images for s in sets])
        labels = np.concatenate([s.labels for s in sets])
        manifest = hashlib.sha256("+".join(s.manifest for s in sets).encode()).hexdigest()[:16]
        return ImageSet(images, labels, manifest, description)


@dataclass
class TaskData:
    """One task under one split regime and stage: what a single training run consumes.

    ``val`` is ``None`` in the final stage (train on train+val, report test).  ``record`` is written into the
    run's ``result.json`` as ``data``: source, regime, manifests, sizes, interpolation, normalisation, skipped
    images; enough to tell exactly which images a run saw.
    """

    info: TaskInfo
    train: ImageSet
    val: ImageSet | None
    test: ImageSet
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    record: dict[str, Any] = field(default_factory=dict)


def to_tensor(
    images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` -> normalised float32 ``(N, 3, H, W)`` on ``device``."""
    import torch  # here, not at the top: the data layer (and the CLI) should not need torch to start

    x = torch.from_numpy(np.ascontiguousarray(images)).to(device, non_blocking=True)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return x.sub_(m).div_(s)
