"""The pretraining recipe of ``vptlab pretrain`` (kept free of torch so the CLI can describe it quickly)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from vptlab.errors import UserError


@dataclass(frozen=True)
class PretrainConfig:
    """The upstream data, the architecture and the recipe (AdamW, warm-up + cosine, label smoothing, flips and
    translations)."""

    classes: int = 100
    per_class: int = 400
    image_size: int = 32
    patch_size: int = 8
    embed_dim: int = 64
    depth: int = 4
    num_heads: int = 4
    epochs: int = 40
    warmup_epochs: int = 3
    batch_size: int = 256
    lr: float = 2e-3
    wd: float = 0.05
    label_smoothing: float = 0.1
    holdout: float = 0.05
    seed: int = 0
    data_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("classes", "per_class", "epochs", "batch_size", "depth", "embed_dim", "num_heads"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.classes < 2:
            raise UserError(f"classes must be >= 2, got {self.classes}")
        if self.image_size % self.patch_size:
            raise UserError(
                f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})"
            )
        if self.embed_dim % self.num_heads:
            raise UserError(
                f"embed_dim ({self.embed_dim}) must be a multiple of num_heads ({self.num_heads})"
            )
        if not 0 < self.holdout < 0.5:
            raise UserError(f"holdout must be in (0, 0.5), got {self.holdout}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise UserError(f"warmup_epochs must be in [0, epochs), got {self.warmup_epochs}")

    @property
    def arch(self) -> dict:
        return dict(
            img_size=self.image_size,
            patch_size=self.patch_size,
            embed_dim=self.embed_dim,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_ratio=4.0,
        )

    def command(self, out: Path) -> str:
        defaults = PretrainConfig()
        flags = [
            f"--{f.name.replace('_', '-')} {getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(defaults, f.name)
        ]
        return " ".join(["vptlab pretrain", *flags, f"--out {out}"])
