"""A finished run as a ready classifier: its model, its preprocessing and its class names.

``load_tuned(run_dir)`` rebuilds the run's backbone and method, loads the tuned weights and reads how the run
prepared its images (size, resize filter, normalisation) from ``result.json``, so new images go through exactly
what training images went through: decoded to RGB, resized to the run's size with its filter
(:func:`vptlab.data.images.decode_image`), scaled to [0, 1] and normalised with the run's mean and std.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vptlab.data.base import IMAGENET_MEAN, IMAGENET_STD, to_tensor
from vptlab.data.images import BadImage, decode_image
from vptlab.errors import UserError
from vptlab.train.card import LABELS_FILE, class_names


@dataclass(frozen=True)
class Preprocess:
    """How a run turns an image file into model input."""

    image_size: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def read(self, path: str | os.PathLike) -> np.ndarray:
        """One file -> uint8 ``(size, size, 3)``; raises :class:`vptlab.data.images.BadImage` if unreadable."""
        return decode_image(path, self.image_size, self.interpolation)

    def tensor(self, images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """uint8 ``(N, H, W, 3)`` -> normalised float32 ``(N, 3, H, W)``."""
        return to_tensor(
            np.require(images, requirements="W"), self.mean, self.std, device
        )  # PIL arrays are read-only

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "mean": list(self.mean),
            "std": list(self.std),
            "input": "float32 (N, 3, H, W): RGB resized to image_size x image_size, scaled to [0, 1], "
            "then (x - mean) / std per channel",
        }


@dataclass
class TunedModel:
    """A tuned run ready to classify: ``model`` (eval mode), ``preprocess``, ``classes`` (names by label)."""

    model: nn.Module
    preprocess: Preprocess
    classes: list[str]
    config: dict[str, Any]
    run_dir: Path
    device: torch.device
    run_id: str = ""

    @torch.inference_mode()
    def logits(self, images: np.ndarray) -> torch.Tensor:
        """Logits for uint8 ``(N, H, W, 3)`` images already at the run's size."""
        return self.model(self.preprocess.tensor(images, self.device)).float()

    def predict(self, paths: Sequence[str | os.PathLike], top_k: int = 5, batch_size: int = 64) -> list[dict]:
        """One dict per path: ``path``, ``labels``, ``probs`` (top-k), or ``error`` for an unreadable file."""
        from vptlab.deploy.predict import predict_files

        return [p.as_dict() for p in predict_files(self, [Path(p) for p in paths], top_k, batch_size)]


def read_result(run_dir: Path) -> dict[str, Any]:
    try:
        result = json.loads((run_dir / "result.json").read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError) as err:
        raise UserError(f"{run_dir}: not a finished run (no readable result.json)") from err
    if result.get("status") != "ok":
        raise UserError(
            f"{run_dir}: the run ended {result.get('status')!r}; only an 'ok' run has a tuned model"
        )
    return result


def preprocess_of(result: dict[str, Any]) -> Preprocess:
    """The preprocessing a run applied to its images, from its ``result.json``."""
    data, cfg = result.get("data") or {}, result["config"]
    return Preprocess(
        image_size=int(data.get("image_size") or cfg["image_size"]),
        # synthetic images were drawn at size (no filter recorded); new images get the run's configured one
        interpolation=data.get("interpolation") or cfg.get("interpolation") or "bilinear",
        mean=tuple(float(v) for v in (data.get("mean") or IMAGENET_MEAN)),
        std=tuple(float(v) for v in (data.get("std") or IMAGENET_STD)),
    )


def classes_of(run_dir: Path, result: dict[str, Any]) -> list[str]:
    """The run's label map: ``labels.json`` in the run folder, else derived from the result."""
    path = run_dir / LABELS_FILE
    if path.is_file():
        try:
            names = json.loads(path.read_text())["classes"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise UserError(f"{path}: expected an object with 'classes': [name of label 0, ...]") from err
        if len(names) == result["task"]["num_classes"]:
            return [str(n) for n in names]
        raise UserError(f"{path}: names {len(names)} classes, the run has {result['task']['num_classes']}")
    return class_names(result)[0]


def load_tuned(run_dir: str | os.PathLike, device: str | torch.device | None = None) -> TunedModel:
    """A finished run's model in eval mode with its preprocessing and class names (``device``: default CPU)."""
    from vptlab.train.model import load_run_model

    run_dir = Path(run_dir)
    result = read_result(run_dir)
    dev = torch.device(device or "cpu")
    model, cfg = load_run_model(run_dir, dev)
    classes = classes_of(run_dir, result)
    return TunedModel(
        model.eval(), preprocess_of(result), classes, cfg.to_dict(), run_dir, dev, result["run_id"]
    )


__all__ = ["BadImage", "Preprocess", "TunedModel", "load_tuned"]
