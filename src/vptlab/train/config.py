"""The configuration of one run, and its identity.

``RunConfig.resolved()`` fills every default the method supplies and blanks the fields the method does not read,
so two configs that train the same thing are equal; ``run_id`` hashes the resolved config.  Re-running a study
skips every run whose id already has a finished result.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from vptlab._io import stable_hash
from vptlab.errors import UserError

STAGES = ("tune", "final")
SCHEDULES = ("step", "epoch")
PRECISIONS = ("auto", "fp32", "bf16")
_REGIME = re.compile(r"^(standard|kshot:[1-9]\d*|size:[1-9]\d*)$")
# Fields only some methods read; blanked (None) for the others by resolved().
_METHOD_FIELDS = (
    "prompt_length",
    "prompt_dropout",
    "backbone_dropout",
    "lora_rank",
    "lora_alpha",
    "ft_lr",
    "ft_wd",
    "ft_batch_size",
)


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines what one run computes (execution details such as the device are not here)."""

    method: str
    task: str
    data: str = "synthetic"
    backbone: str = "vptlab-tiny"
    checkpoint: str | None = None  # local weights file for the backbone
    backbone_args: tuple[tuple[str, Any], ...] = ()  # timm architecture overrides, e.g. (("depth", 2),)
    pretrained: bool = True
    image_size: int | None = None  # None: the backbone's native size
    interpolation: str = "bilinear"
    stage: str = "tune"  # tune: train800 -> val200; final: train800val200 -> test
    regime: str = "standard"  # standard | kshot:K | size:N
    split_seed: int = 0
    lr: float | None = None  # base lr, scaled by batch_size / 256; None: the method's default
    wd: float | None = None
    batch_size: int | None = None
    epochs: int = 100
    warmup_epochs: int = 10
    schedule: str = (
        "step"  # step: warm-up + cosine per optimiser step; epoch: the reference's per-epoch steps
    )
    reference_optimizer: bool = False  # reproduce the reference code's optimiser quirks (see optim.py)
    seed: int = 42
    prompt_length: int | None = 10
    prompt_dropout: float | None = None  # None: 0.1 for deep prompts, 0.0 for shallow
    backbone_dropout: float | None = (
        0.0  # dropout inside the backbone under full fine-tuning (reference: 0.1)
    )
    lora_rank: int | None = 8
    lora_alpha: float | None = 8.0
    ft_lr: float | None = None  # ft-then-pt stage 1
    ft_wd: float | None = None
    ft_batch_size: int | None = None
    eval_test_every: int = (
        1  # test loss/acc every N epochs (loss curves); 0: the final stage's last epoch only
    )
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    skip_bad_images: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # free-form labels

    def __post_init__(self) -> None:
        from vptlab.methods import get_method

        get_method(self.method)
        object.__setattr__(self, "backbone_args", tuple(sorted((str(k), v) for k, v in self.backbone_args)))
        _check(self.lr is None or self.lr > 0, "lr", "must be > 0", self.lr)
        _check(self.wd is None or self.wd >= 0, "wd", "must be >= 0", self.wd)
        _check(self.batch_size is None or self.batch_size >= 1, "batch_size", "must be >= 1", self.batch_size)
        _check(self.epochs >= 1, "epochs", "must be >= 1", self.epochs)
        _check(
            0 <= self.warmup_epochs < self.epochs or self.warmup_epochs == 0,
            "warmup_epochs",
            f"must be in [0, epochs={self.epochs})",
            self.warmup_epochs,
        )
        _check(self.stage in STAGES, "stage", f"must be one of {STAGES}", self.stage)
        _check(self.schedule in SCHEDULES, "schedule", f"must be one of {SCHEDULES}", self.schedule)
        _check(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}", self.precision)
        _check(bool(_REGIME.match(self.regime)), "regime", "must be standard, kshot:K or size:N", self.regime)
        _check(self.image_size is None or self.image_size >= 8, "image_size", "must be >= 8", self.image_size)
        _check(
            self.interpolation in ("nearest", "bilinear", "bicubic", "lanczos", "tf-bilinear"),
            "interpolation",
            "must be nearest, bilinear, bicubic, lanczos or tf-bilinear",
            self.interpolation,
        )
        _check(
            self.prompt_length is None or self.prompt_length >= 1,
            "prompt_length",
            "must be >= 1",
            self.prompt_length,
        )
        for name in ("prompt_dropout", "backbone_dropout"):
            value = getattr(self, name)
            _check(value is None or 0 <= value < 1, name, "must be in [0, 1)", value)
        _check(self.lora_rank is None or self.lora_rank >= 1, "lora_rank", "must be >= 1", self.lora_rank)
        _check(self.lora_alpha is None or self.lora_alpha > 0, "lora_alpha", "must be > 0", self.lora_alpha)
        _check(self.ft_lr is None or self.ft_lr > 0, "ft_lr", "must be > 0", self.ft_lr)
        _check(self.ft_wd is None or self.ft_wd >= 0, "ft_wd", "must be >= 0", self.ft_wd)
        _check(self.eval_test_every >= 0, "eval_test_every", "must be >= 0", self.eval_test_every)

    def resolved(self) -> RunConfig:
        """Method defaults filled in, fields the method does not read blanked, image size made explicit."""
        from vptlab.backbones import default_image_size
        from vptlab.methods import get_method

        method = get_method(self.method)
        changes: dict[str, Any] = {name: None for name in _METHOD_FIELDS if name not in method.uses}
        changes["lr"] = self.lr if self.lr is not None else method.default_lr
        changes["wd"] = self.wd if self.wd is not None else method.default_wd
        changes["batch_size"] = self.batch_size or method.default_batch_size
        changes["image_size"] = self.image_size or default_image_size(self.backbone)
        if "prompt_dropout" in method.uses and self.prompt_dropout is None:
            changes["prompt_dropout"] = 0.0 if self.method == "vpt-shallow" else 0.1
        if method.stages == 2:
            full = get_method("full")
            changes["ft_lr"] = self.ft_lr if self.ft_lr is not None else full.default_lr
            changes["ft_wd"] = self.ft_wd if self.ft_wd is not None else full.default_wd
            changes["ft_batch_size"] = self.ft_batch_size or full.default_batch_size
        return dataclasses.replace(self, **changes)

    @property
    def run_id(self) -> str:
        return stable_hash(self.resolved().identity())

    def identity(self) -> dict[str, Any]:
        """The fields that define what is computed (``extra`` labels are not part of it)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out["backbone_args"] = [list(kv) for kv in self.backbone_args]
        return out

    def stage1(self) -> RunConfig:
        """ft-then-pt's first stage: an ordinary full fine-tuning run with ``ft_*`` hyper-parameters."""
        cfg = self.resolved()
        if get_method_stages(cfg.method) != 2:
            raise ValueError(f"{cfg.method} has no first stage")
        return dataclasses.replace(
            cfg,
            method="full",
            lr=cfg.ft_lr,
            wd=cfg.ft_wd,
            batch_size=cfg.ft_batch_size,
            ft_lr=None,
            ft_wd=None,
            ft_batch_size=None,
            extra={},
        ).resolved()

    def to_dict(self) -> dict[str, Any]:
        out = self.identity()
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(
                f"{source}: unknown field {unknown[0]!r}; valid fields: {', '.join(sorted(known))}"
            )
        data = dict(data)
        data["backbone_args"] = tuple(tuple(kv) for kv in data.get("backbone_args", ()))
        return cls(**data)


def get_method_stages(name: str) -> int:
    from vptlab.methods import get_method

    return get_method(name).stages


def _check(ok: bool, name: str, rule: str, value: Any) -> None:
    if not ok:
        raise UserError(f"{name} {rule}, got {value!r}")
