"""What every tuning method declares, and the registry that finds methods by name.

A method says which parameters train, which optimiser and default grid it uses (DESIGN.md section 2), and
whether the backbone runs in eval mode while training.  Adding a method is one module with one ``register``
call; nothing else in vptlab lists the methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vptlab.errors import UserError
from vptlab.methods.options import Option

if TYPE_CHECKING:
    from torch import nn

# DESIGN.md section 2: base lrs (scaled by batch/256) x weight decays.
PROMPT_GRID = {
    "lr": (50.0, 25.0, 10.0, 5.0, 2.5, 1.0, 0.5, 0.25, 0.1, 0.05),
    "wd": (0.01, 0.001, 0.0001, 0.0),
}
FT_GRID = {"lr": (0.001, 0.0001, 0.0005, 0.005), "wd": (0.01, 0.001, 0.0001, 0.0)}


@dataclass(frozen=True)
class Method:
    """A tuning method.  ``prepare(model, cfg)`` adds its modules and sets ``requires_grad``."""

    name: str
    summary: str
    trainable: str
    optimizer: str  # "sgd" (momentum 0.9) or "adamw"
    grid: dict[str, tuple[float, ...]]
    default_batch_size: int
    default_lr: float
    default_wd: float
    prepare: Callable[[nn.Module, Any], None]
    backbone_eval: bool = True  # the frozen backbone runs in eval mode (its dropout off), as in the reference
    uses: frozenset[str] = field(default_factory=frozenset)  # RunConfig fields this method reads
    stages: int = 1
    options: tuple[Option, ...] = ()  # the method's own options (RunConfig.method_options)
    label: str = ""  # name in tables and figures ("" -> the method name)
    color: str = ""  # matplotlib colour in figures ("" -> a default)
    merge: Callable[[nn.Module], None] | None = None  # fold the tuned modules into the backbone weights

    def option(self, name: str) -> Option:
        for opt in self.options:
            if opt.name == name:
                return opt
        raise KeyError(f"{self.name} has no option {name!r}")

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"{self.name}: optimizer must be 'sgd' or 'adamw'")

    def train_mode(self, model: nn.Module) -> None:
        """Put the model in training mode; the frozen backbone stays in eval mode where the method says so."""
        model.train()
        if self.backbone_eval:
            model.eval()
            prompts = getattr(model, "vpt", None)
            if prompts is not None:
                prompts.train()  # prompt dropout stays active
            for module in model.modules():
                if getattr(module, TRAINS_ATTR, False):
                    module.train()  # added modules (adapters, an MLP head) keep their dropout / batch norm

    @property
    def grid_size(self) -> int:
        return len(self.grid["lr"]) * len(self.grid["wd"])


_REGISTRY: dict[str, Method] = {}
# A module a method adds to a frozen backbone sets this attribute to True to train in training mode.
TRAINS_ATTR = "vptlab_trains"


def register(method: Method) -> Method:
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} is registered twice")
    _REGISTRY[method.name] = method
    return method


def get_method(name: str) -> Method:
    _load_builtin()
    if name not in _REGISTRY:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


_ORDER = ("linear", "full", "vpt-shallow", "vpt-deep", "mixed", "ft-then-pt", "bias", "lora")
# The PETL methods of V-PETL Bench / NOAH / PETL_Vision, after the paper's ones.
_PETL = (
    "adapter",
    "adaptformer",
    "ssf",
    "fact",
    "convpass",
    "repadapter",
    "dora",
    "ln-tune",
    "partial-k",
    "mlp-head",
)


def list_methods() -> list[Method]:
    """Registered methods, the paper's ones first."""
    _load_builtin()
    rank = {name: i for i, name in enumerate(_ORDER + _PETL)}
    return sorted(_REGISTRY.values(), key=lambda m: rank.get(m.name, len(rank)))


def method_names() -> list[str]:
    return [m.name for m in list_methods()]


def _load_builtin() -> None:
    # importing the modules runs their register(...) lines
    from vptlab.methods import (  # noqa: F401
        adapter,
        adaptformer,
        bias,
        convpass,
        dora,
        fact,
        ft_then_pt,
        full,
        linear,
        ln_tune,
        lora,
        mixed,
        mlp_head,
        partial_k,
        repadapter,
        ssf,
        vpt,
    )


def freeze(model: nn.Module) -> None:
    for p in model.parameters():
        p.requires_grad_(False)


def unfreeze_head(model: nn.Module) -> None:
    for p in model.get_classifier().parameters():
        p.requires_grad_(True)
