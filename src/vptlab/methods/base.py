"""What every tuning method declares, and the registry that finds methods by name.

A method is one module: a frozen :class:`MethodConfig` subclass with its options (defaults, validation, help),
a ``prepare(model, options)`` typed to that class, and one :func:`register` call with its metadata (optimiser,
default grid, label, colour, order, cost kind, ...).  Nothing else in vptlab lists the methods or their options:
the spec keys, the CLI flags, the tie-break axes, labels, colours and cost kinds are read from here.  A package
adds a method through the ``vptlab.methods`` entry point group (see ``docs/methods.md``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from vptlab.errors import UserError

if TYPE_CHECKING:
    from torch import nn

    from vptlab.train.config import RunConfig

# The reference grids (docs/protocol.md): base lrs (scaled by batch/256) x weight decays.
PROMPT_GRID = {
    "lr": (50.0, 25.0, 10.0, 5.0, 2.5, 1.0, 0.5, 0.25, 0.1, 0.05),
    "wd": (0.01, 0.001, 0.0001, 0.0),
}
FT_GRID = {"lr": (0.001, 0.0001, 0.0005, 0.005), "wd": (0.01, 0.001, 0.0001, 0.0)}
# The recipe the PETL benchmarks (V-PETL Bench, PETL_Vision) train adapter-style methods with: AdamW over the FT
# grid, batch 64; their fixed lr 1e-3 at batch 64 is base lr 0.004 here, and 0.005 is the nearest grid point.
PETL_RECIPE: dict[str, Any] = {
    "optimizer": "adamw",
    "grid": FT_GRID,
    "default_batch_size": 64,
    "default_lr": 0.005,
    "default_wd": 0.0001,
}
COST_KINDS = (
    "full",
    "frozen",
    "linear",
)  # gradients through all weights, through a frozen backbone, head only
ENTRY_POINT_GROUP = "vptlab.methods"
# Backbone families (vptlab.backbones.create.backbone_family): a method declares those it applies to.
ALL_FAMILIES = ("vit", "vit-registers", "swin", "convnet")
TRANSFORMER_FAMILIES = ("vit", "vit-registers", "swin")
VIT_FAMILIES = ("vit", "vit-registers")
_NO_LEGACY = object()
_KINDS = {int: "int", float: "float", str: "str", bool: "bool"}
_PALETTE = ("#1f78b4", "#33a02c", "#e31a1c", "#ff7f00", "#6a3d9a", "#b15928", "#a6cee3", "#b2df8a", "#fb9a99")

Check = Callable[[Any], "str | None"]


def option(
    default: Any,
    *,
    help: str = "",
    check: Check | None = None,
    choices: tuple[Any, ...] | None = None,
    legacy: Any = _NO_LEGACY,
) -> Any:
    """A method option: a dataclass field with its help text and validation.

    ``check(value)`` returns a problem ("must be >= 1") or None; ``choices`` limits the value to a set.
    ``legacy`` is for options added to a method after runs existed: the value the method had before the
    option existed.  A config at that value keeps its old run id (the option is left out of the identity).
    """
    meta = {"help": help, "check": check, "choices": choices, "legacy": legacy}
    return field(default=default, metadata=meta)


def at_least(bound: float) -> Check:
    return lambda v: None if v >= bound else f"must be >= {bound:g}"


def positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be >= 0"


def unit_interval(v: float) -> str | None:
    return None if 0 <= v < 1 else "must be in [0, 1)"


@dataclass(frozen=True)
class OptionInfo:
    """One option of a method's config class, as the spec parser and the CLI see it."""

    name: str
    kind: str  # "int" | "float" | "str" | "bool"
    default: Any
    help: str
    check: Check | None
    choices: tuple[Any, ...] | None
    legacy: Any

    @property
    def has_legacy(self) -> bool:
        """Whether the option was added to an existing method (its ``legacy`` value is what runs meant before)."""
        return self.legacy is not _NO_LEGACY

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this option (type, choices, range), or None."""
        if self.kind == "bool":
            ok = isinstance(value, bool)
        elif self.kind == "str":
            ok = isinstance(value, str)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and (self.kind == "float" or float(value).is_integer()) and math.isfinite(value)
        if not ok:
            return f"must be {_ARTICLE[self.kind]}"
        if self.choices is not None and value not in self.choices:
            return "must be one of " + ", ".join(repr(c) for c in self.choices)
        return self.check(value) if self.check else None


_ARTICLE = {"int": "an integer", "float": "a finite number", "str": "a string", "bool": "true or false"}


@dataclass(frozen=True)
class MethodConfig:
    """Base class of every method's options: a frozen dataclass validated field by field on creation.

    Subclasses declare fields with :func:`option`; ``validate()`` may add rules across fields.  Errors name the
    field: ``lora_rank must be >= 1, got 0``.
    """

    def __post_init__(self) -> None:
        for info in options_of(type(self)):
            value = getattr(self, info.name)
            problem = info.problem(value)
            if problem:
                raise UserError(f"{info.name} {problem}, got {value!r}")
            if info.kind == "float":
                object.__setattr__(self, info.name, float(value))
            elif info.kind == "int":
                object.__setattr__(self, info.name, int(value))
        self.validate()

    def validate(self) -> None:
        """Rules across fields; raise UserError naming the field."""

    def resolved_for(self, run: RunConfig) -> MethodConfig:
        """The options in canonical form for this run (two spellings of one computation become one)."""
        return self

    def identity_extra(self) -> dict[str, Any]:
        """Keys added to the run identity (e.g. when an option's meaning was revised); usually none."""
        return {}

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class NoOptions(MethodConfig):
    """A method without options of its own."""


@functools.cache
def options_of(cls: type[MethodConfig]) -> tuple[OptionInfo, ...]:
    """The options of a config class, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = _KINDS.get(hints[f.name])
        if kind is None:
            raise TypeError(f"{cls.__name__}.{f.name}: an option must be int, float, str or bool")
        if f.default is dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: an option needs a default")
        meta = f.metadata
        out.append(
            OptionInfo(
                f.name,
                kind,
                f.default,
                meta.get("help", ""),
                meta.get("check"),
                meta.get("choices"),
                meta.get("legacy", _NO_LEGACY),
            )
        )
    return tuple(out)


C = TypeVar("C", bound=MethodConfig)


@dataclass(frozen=True)
class FirstStage:
    """A two-stage method's first stage: an ordinary run of ``method`` (FT-then-PT: ``full``).

    ``config(options)`` gives that run's fields (``lr``, ``wd``, ``batch_size``, ``options``);
    ``from_selected(cfg)`` the options that make the first stage equal a given run of ``method`` (a study hands
    FT-then-PT its selected ``full`` run); ``keys`` are those options (a study takes them from that selection).
    """

    method: str
    config: Callable[[Any], dict[str, Any]]
    from_selected: Callable[[RunConfig], dict[str, Any]]
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Method(Generic[C]):
    """A tuning method: its options class, ``prepare(model, options)`` and everything vptlab shows about it."""

    name: str
    summary: str
    trainable: str  # what trains, in words
    prepare: Callable[[nn.Module, C], None]
    config: type[C] = NoOptions  # type: ignore[assignment]
    optimizer: str = "sgd"  # "sgd" (momentum 0.9) or "adamw"
    grid: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(PROMPT_GRID))
    default_batch_size: int = 64
    default_lr: float = 0.25
    default_wd: float = 0.0001
    label: str = ""  # table/figure label; default: the name
    color: str = ""  # figure colour; default: one from a palette, by name
    order: int = 100  # position in tables and listings (the paper's methods first)
    cost: str = "frozen"  # throughput figure it uses in estimates: one of COST_KINDS
    backbone_eval: bool = True  # the frozen backbone runs in eval mode (its dropout off), as in the reference
    first_stage: FirstStage | None = None  # two-stage methods (FT-then-PT)
    load_stage1: Callable[[nn.Module, Path, C], None] | None = None  # put stage-1 weights on the model
    merge: Callable[[nn.Module], None] | None = None  # fold the method into the backbone weights, in place
    tie_axes: tuple[str, ...] = ()  # selection ties: after lr, wd, compare these (default: batch, options)
    families: tuple[str, ...] = VIT_FAMILIES  # backbone families it applies to (a subset of ALL_FAMILIES)

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"{self.name}: optimizer must be 'sgd' or 'adamw'")
        if self.cost not in COST_KINDS:
            raise ValueError(f"{self.name}: cost must be one of {COST_KINDS}")
        if not (isinstance(self.config, type) and issubclass(self.config, MethodConfig)):
            raise TypeError(f"{self.name}: config must be a MethodConfig subclass")
        options_of(self.config)  # the option types are checked once, at registration
        unknown = set(self.families) - set(ALL_FAMILIES)
        if unknown or not self.families:
            raise ValueError(f"{self.name}: families must be a non-empty subset of {ALL_FAMILIES}")

    @property
    def stages(self) -> int:
        return 2 if self.first_stage is not None else 1

    @property
    def display_label(self) -> str:
        return self.label or self.name

    @property
    def display_color(self) -> str:
        if self.color:
            return self.color
        return _PALETTE[sum(map(ord, self.name)) % len(_PALETTE)]

    @property
    def options(self) -> tuple[OptionInfo, ...]:
        return options_of(self.config)

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    @property
    def selection_axes(self) -> tuple[str, ...]:
        """Axes compared after the validation accuracy when breaking ties (smaller first)."""
        numeric = tuple(o.name for o in self.options if o.kind in ("int", "float"))
        rest = self.tie_axes or ("batch_size", *numeric)
        return ("lr", "wd", *dict.fromkeys(a for a in rest if a not in ("lr", "wd")))

    def make_options(self, values: Mapping[str, Any] | None = None) -> C:
        """The validated options: ``values`` over the defaults; an unknown key names the valid ones."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(self.option_names))
        if unknown:
            valid = ", ".join(self.option_names) or "none"
            raise UserError(f"method {self.name} has no option {unknown[0]!r}; its options: {valid}")
        return self.config(**values)

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
                    module.train()  # modules a method adds (adapters, an MLP head) keep their dropout active

    @property
    def grid_size(self) -> int:
        return len(self.grid["lr"]) * len(self.grid["wd"])


# A module a method adds to a frozen backbone sets this attribute to True to run in training mode while training.
TRAINS_ATTR = "vptlab_trains"
_REGISTRY: dict[str, Method] = {}
_BROKEN: dict[str, str] = {}  # plugin entry point name -> why it did not load
_LOADED = False


def register(method: Method) -> Method:
    """Add a method to the registry (a method module calls this once, at import)."""
    from vptlab.train.config import general_field_names

    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} is registered twice")
    clash = set(method.option_names) & set(general_field_names())
    if clash:
        raise ValueError(f"{method.name}: option {sorted(clash)[0]!r} is a RunConfig field")
    _REGISTRY[method.name] = method
    return method


def get_method(name: str) -> Method:
    _load_all()
    if name in _BROKEN:
        raise UserError(_BROKEN[name])
    if name not in _REGISTRY:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(method_names())}")
    return _REGISTRY[name]


def list_methods() -> list[Method]:
    """Registered methods in their declared order (the paper's ones first), then by name."""
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda m: (m.order, m.name))


def method_names() -> list[str]:
    return [m.name for m in list_methods()]


def broken_plugins() -> dict[str, str]:
    """Entry points of the ``vptlab.methods`` group that failed to load: name -> one line saying why."""
    _load_all()
    return dict(_BROKEN)


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    # importing the modules runs their register(...) lines
    from vptlab.methods import (  # noqa: F401  # noqa: F401  the PETL methods (docs/petl-methods.md)
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

    _load_plugins()


def _load_plugins() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY or ep.name in _BROKEN:
            continue
        try:
            loaded = ep.load()
            if isinstance(loaded, Method) and loaded.name not in _REGISTRY:
                register(loaded)
            if ep.name not in _REGISTRY:
                raise ValueError(f"it registered no method named {ep.name!r}")
        except Exception as err:  # a plugin's bug must not take vptlab down: one line, naming it
            _BROKEN[ep.name] = (
                f"method plugin {ep.name!r} ({ep.value}) failed to load: {type(err).__name__}: {err}"
            )


def reload_plugins() -> None:
    """Look for plugins again (after a package was installed in this process)."""
    for name in list(_BROKEN):
        del _BROKEN[name]
    _load_all()
    _load_plugins()


def freeze(model: nn.Module) -> None:
    for p in model.parameters():
        p.requires_grad_(False)


def unfreeze_head(model: nn.Module) -> None:
    for p in model.get_classifier().parameters():
        p.requires_grad_(True)


def methods_for_family(family: str) -> list[str]:
    """The methods that apply to a backbone family, in listing order."""
    return [m.name for m in list_methods() if family in m.families]


def require_family(method: Method, family: str, backbone: str) -> None:
    """Refuse, in one line naming the methods that do apply, a method that does not apply to this backbone."""
    if family not in method.families:
        fits = ", ".join(methods_for_family(family)) or "none"
        raise UserError(
            f"method {method.name} does not apply to {family} backbones ({backbone}; it applies to "
            f"{', '.join(method.families)}); methods for {family}: {fits}"
        )


def method_label(name: str) -> str:
    """A method's label in tables and figures (its name if it is not registered)."""
    try:
        return get_method(name).display_label
    except UserError:
        return name


def method_color(name: str) -> str:
    try:
        return get_method(name).display_color
    except UserError:
        return "black"


def method_rank(name: str) -> tuple[int, str]:
    """Sort key: declared order, then name; unregistered names last."""
    try:
        return (get_method(name).order, name)
    except UserError:
        return (10**6, name)


__all__ = [
    "ALL_FAMILIES",
    "COST_KINDS",
    "FT_GRID",
    "PROMPT_GRID",
    "FirstStage",
    "Method",
    "MethodConfig",
    "NoOptions",
    "OptionInfo",
    "at_least",
    "broken_plugins",
    "freeze",
    "get_method",
    "list_methods",
    "method_color",
    "method_label",
    "method_names",
    "method_rank",
    "methods_for_family",
    "require_family",
    "non_negative",
    "option",
    "options_of",
    "positive",
    "register",
    "reload_plugins",
    "unfreeze_head",
    "unit_interval",
]
