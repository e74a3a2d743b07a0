"""A study spec: TOML or YAML validated into frozen dataclasses.

A study is tasks x methods x hyper-parameter grid x seeds x regimes run with the paper's protocol
(docs/protocol.md).  The file says only what differs from the defaults; every value is checked here, and every
error names the file and the key (``paper.toml: methods.full.lr[2]: must be > 0, got -1``).  Sections::

    name, description
    [backbone]   name, checkpoint, image_size, interpolation, pretrained, [backbone.kwargs] (timm overrides)
    [data]       source ("synthetic" | "vtab1k:ROOT" | "fgvc:ROOT" | "fewshot:ROOT" | "folder:PATH"), tasks (list | "all"),
                 split_seed, skip_bad_images, eval_sets ({name = "PATH"}: scored after each final run)
    [training]   epochs, warmup_epochs, schedule, eval_test_every, precision, reference_optimizer, head_init,
                 seeds, tune_seed
    [regimes]    standard (bool), kshot (list of K), fewshot (list of K), size (list of train sizes)
    [methods.NAME]             lr, wd, batch_size, warmup_epochs, schedule, + the method's own options (its config
                               class: prompt_length, lora_rank, ...; `vptlab methods`); a list is a grid axis
    [methods.NAME.tasks.TASK]  the same keys, for one task
    [task_options.TASK]        any method option for one task, in every method that has it (e.g. the VPT
                               release's prompt length per task)
    [tune]       early_stopping ("none" | "sha"), rungs | eta, min_epochs
    [executor]   kind ("local" | "ray"), workers, address, device, cpus_per_run, gpus_per_run, max_retries,
                 checkpoint_storage
    [log]        trackers (["tensorboard", "mlflow"]), tracking_uri, experiment  (vptlab.track)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from vptlab.errors import UserError
from vptlab.study._schema import Table, at_least, non_negative, one_of, positive
from vptlab.track.base import LogOptions

DEFAULT_SEEDS = (42, 44, 82, 100, 800)
# Keys every [methods.NAME] table takes besides the method's own options (which come from its config class):
# kind and check.  The schedule keys override [training] for one method (e.g. FT's 5 warm-up epochs).
ALWAYS = {"lr": ("float", positive), "wd": ("float", non_negative), "batch_size": ("int", at_least(1))}
SCHEDULE_KEYS = {"warmup_epochs": ("int", non_negative), "schedule": ("str", one_of("step", "epoch"))}


@dataclass(frozen=True)
class BackboneSpec:
    """Which pretrained ViT every run starts from."""

    name: str = "vptlab-tiny"
    checkpoint: str | None = None
    image_size: int = 32
    interpolation: str = "bilinear"
    pretrained: bool = True
    kwargs: tuple[
        tuple[str, Any], ...
    ] = ()  # timm architecture overrides (tests: depth=1, embed_dim=32, ...)


@dataclass(frozen=True)
class DataSpec:
    """Where the images come from and which tasks run."""

    source: str = "synthetic"
    tasks: tuple[str, ...] = ()
    split_seed: int | str = (
        0  # an int, or "seed": final runs draw their k-shot/size split with their own seed
    )
    skip_bad_images: bool = False
    # domain shift: (name, source) evaluation sets every final run is also scored on (vptlab.data.evalsets)
    eval_sets: tuple[tuple[str, str], ...] = ()

    def split_seed_for(self, seed: int) -> int:
        return seed if self.split_seed == "seed" else int(self.split_seed)


@dataclass(frozen=True)
class TrainingSpec:
    """Schedule and seeds shared by every run (methods may override batch size and their own options)."""

    epochs: int = 100
    warmup_epochs: int | None = None  # None: 10% of the epochs
    schedule: str = "step"
    eval_test_every: int = 0
    curve_regimes: tuple[str, ...] = (
        "standard",
        "kshot",
        "fewshot",
        "size",
    )  # regime kinds whose finals use the cadence
    precision: str = "auto"
    reference_optimizer: bool = False  # the reference code's optimiser quirks (vptlab.train.optim)
    head_init: str = "default"  # "reference": the reference code's head initialisation
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    tune_seed: int = DEFAULT_SEEDS[0]

    def __post_init__(self) -> None:
        if self.warmup_epochs is not None and self.warmup_epochs >= self.epochs:
            raise UserError(
                f"training.warmup_epochs: must be < epochs ({self.epochs}), got {self.warmup_epochs}"
            )


@dataclass(frozen=True)
class RegimesSpec:
    """Data regimes: the standard 800/200 split, k-shot, and train sizes (train:val kept at 4:1)."""

    standard: bool = True
    kshot: tuple[int, ...] = ()
    size: tuple[int, ...] = ()
    # The k-shot and size regimes can be limited to some tasks / methods (empty: all of the study's).
    kshot_tasks: tuple[str, ...] = ()
    kshot_methods: tuple[str, ...] = ()
    size_tasks: tuple[str, ...] = ()
    size_methods: tuple[str, ...] = ()
    fewshot: tuple[
        int, ...
    ] = ()  # NOAH's few-shot protocol (K per class train, whole val; vptlab.data.splits)
    fewshot_tasks: tuple[str, ...] = ()
    fewshot_methods: tuple[str, ...] = ()

    def covers(self, regime: str, method: str, task: str) -> bool:
        """Whether ``regime`` runs for this method and task."""
        kind = regime.split(":")[0]
        if kind == "standard":
            return True
        tasks, methods = getattr(self, f"{kind}_tasks"), getattr(self, f"{kind}_methods")
        return (not tasks or task in tasks) and (not methods or method in methods)

    @property
    def names(self) -> tuple[str, ...]:
        """Regime strings as ``load_task`` takes them."""
        return (
            (("standard",) if self.standard else ())
            + tuple(f"kshot:{k}" for k in self.kshot)
            + tuple(f"fewshot:{k}" for k in self.fewshot)
            + tuple(f"size:{n}" for n in self.size)
        )


@dataclass(frozen=True)
class MethodSpec:
    """A method in the study: option -> values (more than one value is a grid axis), and per-task overrides."""

    name: str
    options: tuple[tuple[str, tuple[Any, ...]], ...]
    per_task: tuple[tuple[str, tuple[tuple[str, tuple[Any, ...]], ...]], ...] = ()

    def axes(self, task: str) -> dict[str, tuple[Any, ...]]:
        """This method's option values for ``task`` (task overrides replace the method-wide values)."""
        axes = dict(self.options)
        axes.update(dict(dict(self.per_task).get(task, ())))
        return axes

    def grid_size(self, task: str) -> int:
        size = 1
        for values in self.axes(task).values():
            size *= len(values)
        return size


@dataclass(frozen=True)
class TuneSpec:
    """How the tune stage spends compute: every grid point to the end, or successive halving."""

    early_stopping: str = "none"
    eta: int = 3
    min_epochs: int = 1
    # successive halving's plan, resolved: (epoch, eta) rungs; empty without early stopping
    rungs: tuple[tuple[int, int], ...] = ()
    # A one-point grid has nothing to select: "skip" goes straight to the final seeds, "run" trains it anyway.
    single_point: str = "skip"


@dataclass(frozen=True)
class ExecutorSpec:
    """Where runs execute; the CLI can override each field."""

    kind: str = "local"
    workers: int = 1
    address: str | None = None
    device: str = "auto"
    cpus_per_run: int = 1
    gpus_per_run: float = 1.0
    max_retries: int = 3  # ray: attempts of a run lost with its worker or node, after the first
    checkpoint_storage: str | None = None  # ray: shared folder for run checkpoints (default: via the driver)


@dataclass(frozen=True)
class StudySpec:
    """A whole study, resolved: every default filled in, tasks listed."""

    name: str
    backbone: BackboneSpec
    data: DataSpec
    training: TrainingSpec
    regimes: RegimesSpec
    methods: tuple[MethodSpec, ...]
    tune: TuneSpec = field(default_factory=TuneSpec)
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    description: str = ""
    log: LogOptions = field(default_factory=LogOptions)  # trackers every run logs to (vptlab.track)

    def method(self, name: str) -> MethodSpec | None:
        return next((m for m in self.methods if m.name == name), None)

    @property
    def method_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.methods)


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study spec (``.toml``, ``.yaml`` or ``.yml``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: study spec not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise UserError(
            f"{path.name}: line {line}: not UTF-8 text (byte {err.object[err.start]:#04x})"
        ) from None
    return parse_spec(text, name=path.name, yaml_format=path.suffix.lower() in (".yaml", ".yml"))


def parse_spec(text: str, name: str = "study.toml", yaml_format: bool = False) -> StudySpec:
    """Validate spec text; ``name`` is the file name used in error messages."""
    try:
        data = yaml.safe_load(text) if yaml_format else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        raise UserError(f"{name}: not valid {'YAML' if yaml_format else 'TOML'}: {_one_line(err)}") from None
    from vptlab.study._parse import build_spec

    return build_spec(Table({} if data is None else data, name, yaml=yaml_format))


def spec_from_dict(data: dict[str, Any], name: str = "study") -> StudySpec:
    """Validate a spec given as a dict (what ``study.json`` holds, or a Python user's literal)."""
    from vptlab.study._parse import build_spec

    return build_spec(Table(data, name))


def spec_to_dict(spec: StudySpec) -> dict[str, Any]:
    """The resolved spec as plain data that :func:`spec_from_dict` reads back to an equal spec."""
    return {
        "name": spec.name,
        "description": spec.description,
        "backbone": _backbone_dict(spec.backbone),
        "data": {k: v for k, v in _fields(spec.data).items()},
        "training": _fields(spec.training),
        "regimes": _fields(spec.regimes),
        "methods": {m.name: _method_dict(m) for m in spec.methods},
        "tune": _fields(spec.tune),
        "executor": {k: v for k, v in _fields(spec.executor).items() if v is not None},
        "log": {
            "trackers": list(spec.log.trackers),
            "tracking_uri": spec.log.tracking_uri or "",
            "experiment": spec.log.experiment,
        },  # fmt: skip
    }


def _backbone_dict(b: BackboneSpec) -> dict[str, Any]:
    out = {k: v for k, v in _fields(b).items() if k != "kwargs" and v is not None}
    out["kwargs"] = dict(b.kwargs)
    return out


def _method_dict(m: MethodSpec) -> dict[str, Any]:
    out: dict[str, Any] = {k: list(v) for k, v in m.options}
    if m.per_task:
        out["tasks"] = {task: {k: list(v) for k, v in opts} for task, opts in m.per_task}
    return out


def _fields(obj: Any) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(obj).items()}


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


__all__ = [
    "BackboneSpec",
    "DataSpec",
    "ExecutorSpec",
    "MethodSpec",
    "RegimesSpec",
    "StudySpec",
    "TrainingSpec",
    "TuneSpec",
    "load_spec",
    "parse_spec",
    "spec_from_dict",
    "spec_to_dict",
]
