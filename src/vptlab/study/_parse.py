"""Turning a spec's tables into :mod:`vptlab.study.spec` dataclasses, one section per function."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from vptlab.data.sources_benchmarks import BENCHMARK_PREFIXES, benchmark_task_infos
from vptlab.errors import UserError
from vptlab.study._schema import Table, at_least, non_negative, one_of, positive
from vptlab.study.spec import (
    ALWAYS,
    DEFAULT_SEEDS,
    SCHEDULE_KEYS,
    BackboneSpec,
    DataSpec,
    ExecutorSpec,
    MethodSpec,
    RegimesSpec,
    StudySpec,
    TrainingSpec,
    TuneSpec,
)
from vptlab.track.base import parse_log

TOP_KEYS = ("name", "description", "backbone", "data", "training", "regimes", "task_options", "methods", "tune",
            "executor", "log")  # fmt: skip
SCHEDULES = ("step", "epoch")
PRECISIONS = ("auto", "fp32", "bf16")
# vptlab.data.resize.RESIZE_MODES
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "tf-bilinear")


def check_backbone_methods(file: str, backbone: str, methods: tuple[str, ...]) -> None:
    """Each method must apply to the backbone's family (``vptlab backbones``), or the spec is refused."""
    from vptlab.backbones.create import family_of_name
    from vptlab.methods.base import get_method, require_family

    family = family_of_name(backbone)
    if family is None:
        return  # an unknown name is reported where the backbone is built
    for name in methods:
        try:
            require_family(get_method(name), family, backbone)
        except UserError as err:
            raise UserError(f"{file}: [methods.{name}]: {err}") from None


def build_spec(top: Table) -> StudySpec:
    """The whole spec; sections are read in dependency order (tasks before per-task method options)."""
    top.reject_unknown(TOP_KEYS)
    name = top.get("name", "str", "study")
    description = top.get("description", "str", "")
    backbone = _backbone(top.sub("backbone"))
    data = _data(top.sub("data"))
    training = _training(top.sub("training"))
    regimes = _regimes(top.sub("regimes"), data)
    shared = _task_options(top.sub("task_options"), data)
    methods = _methods(top.sub("methods", required=True), data, shared)
    _check_regime_methods(top.sub("regimes"), regimes, tuple(m.name for m in methods))
    check_backbone_methods(top.file, backbone.name, tuple(m.name for m in methods))  # prompts on a ConvNet
    tune = _tune(top.sub("tune"), training.epochs)
    executor = _executor(top.sub("executor"))
    log = parse_log(top.sub("log"))  # vptlab.track
    top.done()
    return StudySpec(name, backbone, data, training, regimes, methods, tune, executor, description, log=log)


def _backbone(t: Table) -> BackboneSpec:
    kwargs_table = t.sub("kwargs")
    kwargs = tuple(sorted((k, kwargs_table.raw(k)) for k in list(kwargs_table.data)))
    for key, value in kwargs:
        if not isinstance(value, (int, float, str, bool)):
            kwargs_table.fail(key, f"must be a number, string or boolean, got {value!r}")
    checkpoint = t.get("checkpoint", "str", "") or None
    spec = BackboneSpec(
        name=t.get("name", "str", "vptlab-tiny", check=lambda v: None if v.strip() else "must not be empty"),
        checkpoint=checkpoint,
        image_size=t.get("image_size", "int", 32, check=at_least(8)),
        interpolation=t.get("interpolation", "str", "bilinear", check=one_of(*INTERPOLATIONS)),
        pretrained=t.get("pretrained", "bool", True),
        kwargs=kwargs,
    )
    t.done()
    return spec


def _data(t: Table) -> DataSpec:
    source = t.get("source", "str", "synthetic", check=_check_source)
    tasks_raw = t.raw("tasks", "all")
    known = known_tasks(source)
    if tasks_raw == "all":
        tasks = tuple(default_tasks(source) or ())
        if not tasks:
            t.fail("tasks", f"'all': no tasks found in {source!r}; check the path or name the tasks")
    else:
        tasks = t.convert("tasks", tasks_raw, "str") if isinstance(tasks_raw, str) else None
        tasks = (tasks,) if tasks else t.get_list("tasks", "str")
        for i, task in enumerate(tasks):
            if known is not None and task not in known:
                t.fail(f"tasks[{i}]", f"unknown task {task!r}; known tasks: {', '.join(known)}")
        if len(set(tasks)) != len(tasks):
            t.fail("tasks", "lists a task twice")
    split_seed = t.raw("split_seed", 0)
    if split_seed != "seed":
        split_seed = t.convert("split_seed", split_seed, "int", non_negative)
    spec = DataSpec(source, tasks, split_seed, t.get("skip_bad_images", "bool", False), _eval_sets(t))
    t.done()
    return spec


def _eval_sets(t: Table) -> tuple[tuple[str, str], ...]:
    """``eval_sets = {name = "PATH[?classes=FILE]", ...}`` (study.json keeps it as [[name, path], ...])."""
    raw = t.raw("eval_sets", {})
    pairs = list(raw.items()) if isinstance(raw, dict) else raw
    if not isinstance(pairs, list) or not all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, str) and x for x in p)
        for p in pairs
    ):
        t.fail(
            "eval_sets",
            'expected a table of name = "path" (evaluation sets), e.g. {imagenet-a = "/data/imagenet-a"}',
        )
    return tuple((str(name), str(path)) for name, path in pairs)


def _check_source(source: str) -> str | None:
    if source == "synthetic" or source.startswith(("vtab1k:", "folder:", *BENCHMARK_PREFIXES)):
        return None
    return "must be 'synthetic', 'vtab1k:ROOT', 'fgvc:ROOT', 'fewshot:ROOT' or 'folder:PATH'"


def known_tasks(source: str) -> list[str] | None:
    """Task names a source may hold, known without decoding images; None when that cannot be known."""
    infos = known_task_infos(source)
    return list(infos) if infos else None


def default_tasks(source: str) -> list[str] | None:
    """What ``tasks = "all"`` means: the tasks present under an existing VTAB-1k root (all 19 when the root is
    not there yet, e.g. when planning), every synthetic task, a folder's one task."""
    if source.startswith("vtab1k:") and _vtab_root(source).is_dir():
        return [info.name for info in _vtab_present(source)]
    return known_tasks(source)


def known_task_infos(source: str) -> dict:
    """name -> TaskInfo for sources whose tasks are known without decoding images (VTAB-1k, synthetic, a folder).

    A VTAB-1k root may also hold tasks of its own (folders with a ``task.json``), found when the root exists."""
    if source.startswith("vtab1k:"):
        from vptlab.data.tasks import vtab1k_tasks

        infos = dict(vtab1k_tasks())
        if _vtab_root(source).is_dir():
            infos.update({info.name: info for info in _vtab_present(source)})
        return infos
    if source == "synthetic":
        try:
            from vptlab.data.synthetic import SYNTHETIC_TASKS
        except ImportError:  # the synthetic benchmark is not installed in this build
            return {}
        return dict(SYNTHETIC_TASKS)
    if source.startswith("folder:"):
        return _folder_task_infos(source)
    if source.startswith(BENCHMARK_PREFIXES):
        return benchmark_task_infos(source)  # FGVC, NOAH few-shot (vptlab.data.sources)
    return {}


def _vtab_root(source: str) -> Path:
    return Path(source.partition(":")[2]).expanduser()


@functools.cache
def _vtab_present(source: str) -> list:
    from vptlab.data.vtab1k import find_tasks

    return find_tasks(_vtab_root(source))


@functools.cache
def _folder_task_infos(source: str) -> dict:
    """A user's folder is one task, named after the folder (or its labels.json); {} if it cannot be read yet."""
    from vptlab.data.sources import list_tasks
    from vptlab.errors import UserError

    try:
        return {info.name: info for info in list_tasks(source)}
    except UserError:
        return {}


def _training(t: Table) -> TrainingSpec:
    epochs = t.get("epochs", "int", 100, check=at_least(1))
    seeds = t.get_list("seeds", "int", DEFAULT_SEEDS, check=non_negative, scalar_ok=True)
    if len(set(seeds)) != len(seeds):
        t.fail("seeds", f"lists a seed twice: {list(seeds)}")
    warmup = t.get("warmup_epochs", "int", None, check=non_negative)  # None: 10% of the epochs
    if warmup is not None and warmup >= epochs and warmup > 0:
        t.fail("warmup_epochs", f"must be < epochs ({epochs}), got {warmup}")
    spec = TrainingSpec(
        epochs=epochs,
        warmup_epochs=warmup,
        schedule=t.get("schedule", "str", "step", check=one_of(*SCHEDULES)),
        eval_test_every=t.get("eval_test_every", "int", 0, check=non_negative),
        curve_regimes=t.get_list(
            "curve_regimes",
            "str",
            ("standard", "kshot", "fewshot", "size"),
            check=one_of("standard", "kshot", "fewshot", "size"),
        ),
        precision=t.get("precision", "str", "auto", check=one_of(*PRECISIONS)),
        reference_optimizer=t.get("reference_optimizer", "bool", False),
        head_init=t.get("head_init", "str", "default", check=one_of("default", "reference")),
        seeds=tuple(seeds),
        tune_seed=t.get("tune_seed", "int", seeds[0], check=non_negative),
    )
    t.done()
    return spec


def _regimes(t: Table, data: DataSpec) -> RegimesSpec:
    kshot = t.get_list("kshot", "int", (), check=at_least(1), scalar_ok=True, allow_empty=True)
    size = t.get_list("size", "int", (), check=at_least(5), scalar_ok=True, allow_empty=True)
    fewshot = t.get_list("fewshot", "int", (), check=at_least(1), scalar_ok=True, allow_empty=True)

    def in_study(task: str) -> str | None:
        return None if task in data.tasks else f"must be one of the study's tasks ({', '.join(data.tasks)})"

    limits = {
        key: t.get_list(
            key,
            "str",
            (),
            check=in_study if key.endswith("tasks") else None,
            scalar_ok=True,
            allow_empty=True,
        )
        for key in (
            "kshot_tasks",
            "kshot_methods",
            "size_tasks",
            "size_methods",
            "fewshot_tasks",
            "fewshot_methods",
        )
    }
    standard = t.get("standard", "bool", not (kshot or size or fewshot))
    spec = RegimesSpec(standard, tuple(kshot), tuple(size), fewshot=tuple(fewshot), **limits)
    if not spec.names:
        t.fail("", "no regime left: set standard = true or give kshot / fewshot / size values")
    t.done()
    return spec


def _check_regime_methods(t: Table, regimes: RegimesSpec, methods: tuple[str, ...]) -> None:
    """Regime method limits name the study's methods, and a two-stage method (FT-then-PT) never runs without its
    stage-1 method (``full``) when the study has it."""
    from vptlab.methods import get_method

    for key in ("kshot_methods", "size_methods", "fewshot_methods"):
        chosen = getattr(regimes, key)
        for i, name in enumerate(chosen):
            if name not in methods:
                t.fail(
                    f"{key}[{i}]", f"must be one of the study's methods ({', '.join(methods)}), got {name!r}"
                )
        for name in chosen:
            first = get_method(name).first_stage
            if first is not None and first.method in methods and first.method not in chosen:
                t.fail(key, f"lists {name} without {first.method} (its stage 1)")


def _task_options(t: Table, data: DataSpec) -> dict[str, dict[str, tuple[Any, ...]]]:
    """``[task_options.TASK]``: per-task values of method options, for every method that has the option."""
    out = {}
    keys = {info.name: info for m in _all_methods() for info in m.options}
    for task in list(t.data):
        _check_task(t, task, data)
        sub = t.sub(task)
        for key in sub.data:
            if key not in keys:
                valid = ", ".join(sorted(keys))
                sub.fail(key, f"not a per-task option (task_options take method options: {valid})")
        out[task] = dict(
            _read_options(sub, list(keys), {k: (i.kind, i.problem) for k, i in keys.items()}, {})
        )
        sub.done()
    t.done()
    return out


def _all_methods() -> list:
    from vptlab.methods import list_methods

    return list_methods()


def _check_task(t: Table, task: str, data: DataSpec) -> None:
    if task not in (known_tasks(data.source) or data.tasks):
        t.fail(task, f"unknown task; the study's tasks are {', '.join(data.tasks)}")


def _methods(t: Table, data: DataSpec, shared: dict[str, dict]) -> tuple[MethodSpec, ...]:
    if not t.data:
        t.fail("", "at least one method is needed, e.g. [methods.vpt-deep]")
    names = list(t.data)
    methods = tuple(_method(t.sub(name), name, data, names, shared) for name in names)
    t.done()
    return methods


def _method(t: Table, name: str, data: DataSpec, names: list[str], shared: dict[str, dict]) -> MethodSpec:
    """One ``[methods.NAME]`` table.  A two-stage method (FT-then-PT) whose stage-1 method is in the study
    takes the stage-1 options from that method's selected runs.

    Per-task values: ``[task_options.TASK]`` (keys this method has), then ``[methods.NAME.tasks.TASK]``."""
    from vptlab.methods import get_method, method_names

    if name not in method_names():
        t.fail("", f"unknown method; choose from {', '.join(method_names())}")
    method = get_method(name)
    first = method.first_stage
    from_stage1 = set(first.keys) if first is not None and first.method in names else set()
    kinds = {**ALWAYS, **SCHEDULE_KEYS, **{i.name: (i.kind, i.problem) for i in method.options}}
    allowed = [k for k in kinds if k not in from_stage1]
    defaults = {"lr": method.grid["lr"], "wd": method.grid["wd"], "batch_size": (method.default_batch_size,)}
    rules = _Rules(name, allowed, kinds, from_stage1, first.method if first else "")
    options = _options(t, rules, defaults)
    if first is not None and not from_stage1:
        needed = [k for k in first.keys if k.startswith("ft_")][:2]  # the stage-1 lr and wd
        if not set(needed) <= dict(options).keys():
            t.fail("", f"without methods.{first.method} in the study, {name} needs {' and '.join(needed)} "
                   f"(stage-1 {first.method})")  # fmt: skip
    tasks_t = t.sub("tasks")
    per_task = {task: {k: v for k, v in opts.items() if k in allowed} for task, opts in shared.items()}
    for task in list(tasks_t.data):
        _check_task(tasks_t, task, data)
        per_task.setdefault(task, {}).update(_options(tasks_t.sub(task), rules, {}, extra=()))
    tasks_t.done()
    t.done()
    merged = tuple((task, tuple(opts.items())) for task, opts in per_task.items() if opts)
    return MethodSpec(name, options, merged)


class _Rules:
    """Which keys a method's table takes, their kinds and checks, and why others are refused."""

    def __init__(
        self, method: str, allowed: list[str], kinds: dict, from_stage1: set[str], stage1: str
    ) -> None:
        self.method, self.allowed, self.kinds = method, allowed, kinds
        self.from_stage1, self.stage1 = from_stage1, stage1

    def refuse(self, t: Table, key: str) -> None:
        if key in self.from_stage1:
            t.fail(
                key, f"taken from methods.{self.stage1} ({self.method} reuses its selected runs as stage 1)"
            )
        if any(key in m.option_names for m in _all_methods()):
            t.fail(key, f"{self.method} does not use it; its options: {', '.join(self.allowed)}")


def _options(t: Table, rules: _Rules, defaults: dict, extra=("tasks",)):
    """Option -> tuple of values; keys the method does not read are refused with the ones it does."""
    for key in t.data:
        if key not in rules.allowed and key not in extra:
            rules.refuse(t, key)
    out = _read_options(t, rules.allowed, rules.kinds, defaults)
    t.used.extend(extra)
    if "tasks" not in extra:
        t.done()
    return tuple(out.items())


def _read_options(t: Table, keys: list[str], kinds: dict, defaults: dict) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for key in keys:
        kind, check = kinds[key]
        values = t.get_list(key, kind, None, check=check, scalar_ok=True)
        if values is None:
            values = defaults.get(key)
        if values is not None:
            if len(set(values)) != len(values):
                t.fail(key, f"lists a value twice: {list(values)}")
            out[key] = tuple(values)
    return out


def _tune(t: Table, epochs: int) -> TuneSpec:
    from vptlab.study.asha import early_rungs, geometric_rungs

    mode = t.get("early_stopping", "str", "none", check=one_of("none", "sha", "asha"))
    geometric = t.has("min_epochs")  # the textbook plan; otherwise the early one (asha.early_rungs)
    eta = t.get("eta", "int", 3, check=at_least(2))
    min_epochs = t.get("min_epochs", "int", max(1, epochs // eta**2), check=at_least(1))
    explicit = _rungs(t, epochs) if t.has("rungs") and t.raw("rungs") != [] else None
    single = t.get("single_point", "str", "skip", check=one_of("skip", "run"))
    t.done()
    if mode == "none":
        return TuneSpec("none", eta, min_epochs, single_point=single)
    if epochs < 2:
        t.fail("early_stopping", f"needs training.epochs >= 2, got {epochs}")
    if explicit is None and geometric and 2 * min_epochs > epochs:
        t.fail(
            "min_epochs",
            f"must be <= training.epochs / 2 ({epochs // 2}) for early stopping, got {min_epochs}",
        )
    if explicit is not None:
        plan = explicit
    elif geometric:
        plan = geometric_rungs(epochs, min_epochs, eta)
    else:
        plan = early_rungs(epochs, eta)
    return TuneSpec("sha", eta, min_epochs, rungs=plan, single_point=single)


def _rungs(t: Table, epochs: int) -> tuple[tuple[int, int], ...]:
    """``rungs = [[epoch, eta], ...]``: epochs increasing and inside the schedule, each eta >= 2."""
    value = t.raw("rungs")
    shape = "a list of [epoch, eta] pairs, e.g. [[10, 3], [20, 2]]"
    if not isinstance(value, list | tuple) or not value:
        t.fail("rungs", f"must be {shape}, got {value!r}")
    plan, previous = [], 0
    for pair in value:
        ok = isinstance(pair, list | tuple) and len(pair) == 2
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
        if not ok:
            t.fail("rungs", f"must be {shape}, got {value!r}")
        epoch, eta = pair
        if not previous < epoch < epochs:
            t.fail("rungs", f"epochs must increase and stay below training.epochs ({epochs}), got {value!r}")
        if eta < 2:
            t.fail("rungs", f"each eta must be >= 2 (keep 1/eta), got {value!r}")
        plan.append((epoch, eta))
        previous = epoch
    return tuple(plan)


def _executor(t: Table) -> ExecutorSpec:
    spec = ExecutorSpec(
        kind=t.get("kind", "str", "local", check=one_of("local", "ray")),
        workers=t.get("workers", "int", 1, check=at_least(1)),
        address=t.get("address", "str", "") or None,
        device=t.get("device", "str", "auto", check=_check_device),
        cpus_per_run=t.get("cpus_per_run", "int", 1, check=at_least(1)),
        gpus_per_run=t.get("gpus_per_run", "float", 1.0, check=positive),
        max_retries=t.get("max_retries", "int", 3, check=at_least(0)),
        checkpoint_storage=t.get("checkpoint_storage", "str", "") or None,
    )
    t.done()
    return spec


def _check_device(device: str) -> str | None:
    ok = device in ("auto", "cpu", "cuda", "mps") or device.startswith("cuda:")
    return None if ok else "must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
