"""The configuration of one run, and its identity.

``RunConfig`` knows no method: it holds the method's name, the method's options (validated by the method's own
config class, :mod:`vptlab.methods`) and the fields every run has (data, backbone, schedule, seed, ...).
``resolved()`` fills every default, so two configs that train the same thing are equal; ``run_id`` hashes the
resolved config's :meth:`RunConfig.identity`.  Re-running a study skips every run whose id already has a
finished result.

Identity stays stable across versions: the options methods had before they owned their configs
(``LEGACY_OPTION_KEYS``) are always in it, blank for the methods that do not read them; an option added later
with a ``legacy`` value is left out while it has that value; ``head_init`` is left out at ``"default"``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vptlab._io import stable_hash
from vptlab.errors import UserError

STAGES = ("tune", "final")
SCHEDULES = ("step", "epoch")
PRECISIONS = ("auto", "fp32", "bf16")
HEAD_INITS = ("default", "reference")
WARMUP_FRACTION = 0.1  # warmup_epochs when unset: 10% of the epochs (10 of 100, as in the reference)
_REGIME = re.compile(r"^(standard|kshot:[1-9]\d*|fewshot:[1-9]\d*|size:[1-9]\d*)$")
# Frozen for run-id stability: the method options that were RunConfig fields before methods owned their
# configs.  A run identity carries each of them (None for the methods that do not read it), as it always did.
# New options never go here.
LEGACY_OPTION_KEYS = (
    "prompt_length",
    "prompt_dropout",
    "backbone_dropout",
    "lora_rank",
    "lora_alpha",
    "ft_lr",
    "ft_wd",
    "ft_batch_size",
)
_NOT_GENERAL = ("options", "extra")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines what one run computes (execution details such as the device are not here).

    ``options`` are the method's own (``{"prompt_length": 50}`` for VPT, ``{"lora_rank": 4}`` for LoRA): a
    mapping checked by the method's config class; ``RunConfig.of(method=..., prompt_length=50, ...)`` takes them
    flat.
    """

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
    regime: str = "standard"  # standard | kshot:K | fewshot:K | size:N
    split_seed: int = 0
    lr: float | None = None  # base lr, scaled by batch_size / 256; None: the method's default
    wd: float | None = None
    batch_size: int | None = None
    epochs: int = 100
    warmup_epochs: int | None = None  # None: 10% of the epochs
    schedule: str = (
        "step"  # step: warm-up + cosine per optimiser step; epoch: the reference's per-epoch steps
    )
    reference_optimizer: bool = False  # reproduce the reference code's optimiser (see optim.py)
    head_init: str = "default"  # default: the library's fresh head; reference: kaiming fan_out, bias -log(99)
    seed: int = 42
    eval_test_every: int = (
        1  # test loss/acc every N epochs (loss curves); 0: the final stage's last epoch only
    )
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    skip_bad_images: bool = False
    options: tuple[tuple[str, Any], ...] = ()  # the method's options (a mapping is accepted)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # free-form labels

    def __post_init__(self) -> None:
        method = _method(self.method)
        object.__setattr__(self, "backbone_args", tuple(sorted((str(k), v) for k, v in self.backbone_args)))
        options = dict(self.options.items() if isinstance(self.options, Mapping) else self.options)
        method.make_options(options)  # validates: unknown options and bad values name the field
        object.__setattr__(self, "options", tuple(sorted(options.items())))
        _check(self.lr is None or self.lr > 0, "lr", "must be > 0", self.lr)
        _check(self.wd is None or self.wd >= 0, "wd", "must be >= 0", self.wd)
        _check(self.batch_size is None or self.batch_size >= 1, "batch_size", "must be >= 1", self.batch_size)
        _check(self.epochs >= 1, "epochs", "must be >= 1", self.epochs)
        _check(
            self.warmup_epochs is None or 0 <= self.warmup_epochs < self.epochs or self.warmup_epochs == 0,
            "warmup_epochs",
            f"must be in [0, epochs={self.epochs})",
            self.warmup_epochs,
        )
        _check(self.stage in STAGES, "stage", f"must be one of {STAGES}", self.stage)
        _check(self.schedule in SCHEDULES, "schedule", f"must be one of {SCHEDULES}", self.schedule)
        _check(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}", self.precision)
        _check(self.head_init in HEAD_INITS, "head_init", f"must be one of {HEAD_INITS}", self.head_init)
        _check(
            bool(_REGIME.match(self.regime)),
            "regime",
            "must be standard, kshot:K, fewshot:K or size:N",
            self.regime,
        )
        _check(self.image_size is None or self.image_size >= 8, "image_size", "must be >= 8", self.image_size)
        _check(
            self.interpolation in ("nearest", "bilinear", "bicubic", "lanczos", "tf-bilinear"),
            "interpolation",
            "must be nearest, bilinear, bicubic, lanczos or tf-bilinear",
            self.interpolation,
        )
        _check(self.eval_test_every >= 0, "eval_test_every", "must be >= 0", self.eval_test_every)

    # -- the method's options
    @functools.cached_property
    def method_options(self) -> Any:
        """The method's options as its config class (defaults filled in)."""
        return _method(self.method).make_options(dict(self.options))

    def option(self, name: str, default: Any = None) -> Any:
        """One method option as given (``default`` when not set; resolved configs have every option set)."""
        return dict(self.options).get(name, default)

    # -- resolution and identity
    def resolved(self) -> RunConfig:
        """Method defaults filled in (lr, wd, batch size, every option), warm-up and image size made explicit."""
        return self._resolved

    @functools.cached_property
    def _resolved(self) -> RunConfig:
        from vptlab.backbones import default_image_size

        method = _method(self.method)
        warmup = (
            self.warmup_epochs if self.warmup_epochs is not None else round(WARMUP_FRACTION * self.epochs)
        )
        out = dataclasses.replace(
            self,
            lr=self.lr if self.lr is not None else method.default_lr,
            wd=self.wd if self.wd is not None else method.default_wd,
            batch_size=self.batch_size or method.default_batch_size,
            image_size=self.image_size or default_image_size(self.backbone),
            warmup_epochs=warmup,
        )
        options = out.method_options.resolved_for(out).as_dict()
        return dataclasses.replace(out, options=options) if options != dict(self.options) else out

    @functools.cached_property
    def run_id(self) -> str:
        """The hash of the resolved identity, computed once."""
        return stable_hash(self.resolved().identity())

    def identity(self) -> dict[str, Any]:
        """The fields that define what is computed (``extra`` labels are not part of it)."""
        out = self._general()
        if out["head_init"] == "default":
            del out["head_init"]
        out |= {key: None for key in LEGACY_OPTION_KEYS}
        method = _method(self.method)
        given = dict(self.options)
        for info in method.options:
            if info.name not in given:
                continue
            if info.name in LEGACY_OPTION_KEYS or not info.has_legacy or given[info.name] != info.legacy:
                out[info.name] = given[info.name]
        if given:
            out |= method.make_options(given).identity_extra()
        if self.reference_optimizer and method.optimizer == "adamw":
            out["reference_optimizer_rev"] = 2  # since eps 1e-6 and the bias-only exclusion (issue 11)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Flat: the general fields, then the options (the form result.json holds; ``from_dict`` reads it)."""
        out = self._general() | {key: None for key in LEGACY_OPTION_KEYS} | dict(self.options)
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    def _general(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in general_field_names()}
        out["backbone_args"] = [list(kv) for kv in self.backbone_args]
        return out

    def stage1(self) -> RunConfig:
        """A two-stage method's first stage (FT-then-PT: an ordinary full run with its ``ft_*`` options)."""
        cfg = self.resolved()
        first = _method(cfg.method).first_stage
        if first is None:
            raise ValueError(f"{cfg.method} has no first stage")
        return dataclasses.replace(
            cfg, method=first.method, extra={}, **first.config(cfg.method_options)
        ).resolved()

    # -- construction from flat fields
    @classmethod
    def of(cls, **values: Any) -> RunConfig:
        """A config from flat fields, method options among them: ``RunConfig.of(method="lora", lora_rank=4)``."""
        return cls._from_flat(values, "RunConfig", old_form=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> RunConfig:
        """Read ``to_dict``'s flat form (also result.json files written before methods owned their options:
        an option added since then has its legacy value there, e.g. LoRA's ``qkv+proj`` form)."""
        return cls._from_flat(data, source, old_form="head_init" not in data and "options" not in data)

    @classmethod
    def _from_flat(cls, data: Mapping[str, Any], source: str, old_form: bool) -> RunConfig:
        data = dict(data)
        general = set(general_field_names()) | {"extra"}
        if "method" not in data:
            raise UserError(f"{source}: missing field 'method'")
        options = dict(data.pop("options", None) or {})
        if old_form:
            options |= _legacy_values(data["method"], data)
        for key in [k for k in data if k not in general]:
            value = data.pop(key)
            if key not in LEGACY_OPTION_KEYS or value is not None:  # blanks of the old flat form are fine
                options[key] = value  # the method's config class refuses what is not its option
        data["backbone_args"] = tuple(tuple(kv) for kv in data.get("backbone_args", ()))
        try:
            return cls(**data, options=options)
        except UserError as err:
            raise UserError(str(err) if source == "RunConfig" else f"{source}: {err}") from None
        except TypeError as err:  # a missing required field
            raise UserError(f"{source}: {err}") from None


@functools.cache
def general_field_names() -> tuple[str, ...]:
    """RunConfig's fields that every run has (not the method options, not the free-form labels)."""
    return tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in _NOT_GENERAL)


def _legacy_values(method: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A config written before an option existed meant the option's legacy value (LoRA's qkv+proj form, ...)."""
    return {
        o.name: o.legacy
        for o in _method(method).options
        if o.name not in data and o.has_legacy and o.name not in LEGACY_OPTION_KEYS
    }


def get_method_stages(name: str) -> int:
    return _method(name).stages


def _method(name: str):
    from vptlab.methods import get_method

    return get_method(name)


def _check(ok: bool, name: str, rule: str, value: Any) -> None:
    if not ok:
        raise UserError(f"{name} {rule}, got {value!r}")
