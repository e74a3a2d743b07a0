"""What every tuning method declares, and the registry that finds methods by name.

A method says which parameters train, which optimiser and default grid it uses (docs/protocol.md), and
whether the backbone runs in eval mode while training.  Adding a method is one module with one ``register``
call; nothing else in vptlab lists the methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vptlab.errors import UserError

if TYPE_CHECKING:
    from torch import nn

# The reference code's grids (docs/protocol.md): base lrs (scaled by batch/256) x weight decays.
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

    @property
    def grid_size(self) -> int:
        return len(self.grid["lr"]) * len(self.grid["wd"])


_REGISTRY: dict[str, Method] = {}


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


def list_methods() -> list[Method]:
    """Registered methods, the paper's ones first."""
    _load_builtin()
    rank = {name: i for i, name in enumerate(_ORDER)}
    return sorted(_REGISTRY.values(), key=lambda m: rank.get(m.name, len(rank)))


def method_names() -> list[str]:
    return [m.name for m in list_methods()]


def _load_builtin() -> None:
    # importing the modules runs their register(...) lines
    from vptlab.methods import bias, ft_then_pt, full, linear, lora, mixed, vpt  # noqa: F401


def freeze(model: nn.Module) -> None:
    for p in model.parameters():
        p.requires_grad_(False)


def unfreeze_head(model: nn.Module) -> None:
    for p in model.get_classifier().parameters():
        p.requires_grad_(True)
