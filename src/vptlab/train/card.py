"""What a run folder tells a reader without vptlab's help: ``labels.json`` (the label map) and ``README.md``.

Both are written with the result (:func:`write_run_card`), for every run.  ``labels.json`` names the classes
by label: a folder task's class-folder names (or its own ``labels.json``), a synthetic task's class names, else
the label numbers (the VTAB-1k release lists numbers only).  ``README.md`` is the run card: data, method,
backbone, metrics (with the spread over seeds once a study has them: :func:`refresh_study_cards`), the cost
profile, and the commands that load and use the tuned model.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from vptlab._io import atomic_write_json, atomic_write_text

LABELS_FILE = "labels.json"
CARD_FILE = "README.md"


def class_names(result: dict[str, Any]) -> tuple[list[str], bool]:
    """The class names of a run's task by label, and whether they are names (not just label numbers)."""
    data = result.get("data") or {}
    num_classes = int((result.get("task") or {}).get("num_classes") or 0)
    names = data.get("classes")
    if names and len(names) == num_classes:
        return [str(n) for n in names], any(str(n) != str(i) for i, n in enumerate(names))
    if data.get("source_kind") == "synthetic":
        from vptlab.data.synthetic.tasks import TASKS

        task = TASKS.get(data.get("task", ""))
        if task is not None and len(task.class_names) == num_classes:
            return list(task.class_names), True
    return [str(i) for i in range(num_classes)], False


def labels_record(result: dict[str, Any]) -> dict[str, Any]:
    """``labels.json``: the class names by label and where they came from."""
    names, named = class_names(result)
    data = result.get("data") or {}
    return {
        "classes": names,
        "named": named,
        "task": (result.get("task") or {}).get("name"),
        "source": data.get("source"),
    }


def write_run_card(run_dir: str | Path, result: dict[str, Any], seeds: list[dict] | None = None) -> None:
    """Write ``labels.json`` and ``README.md`` into ``run_dir`` (``seeds``: the results of the same config
    over its seeds, for the spread)."""
    out = Path(run_dir)
    if result.get("task"):
        atomic_write_json(out / LABELS_FILE, labels_record(result))
    atomic_write_text(out / CARD_FILE, render_card(result, out, seeds))


def render_card(result: dict[str, Any], run_dir: Path, seeds: list[dict] | None = None) -> str:
    cfg = result.get("config", {})
    lines = [
        f"# {cfg.get('method')} on {cfg.get('task')}: {result.get('status')}",
        "",
        f"Run `{result.get('run_id')}`, trained by vptlab {result.get('environment', {}).get('vptlab', '?')} "
        f"in {result.get('seconds', 0):.1f} s on {result.get('environment', {}).get('device', '?')}.",
        "",
        *_data_section(result),
        *_method_section(cfg),
        *_metrics_section(result, seeds),
        *_cost_section(result.get("cost")),
        *_use_section(result, run_dir),
    ]
    return "\n".join(lines) + "\n"


def _data_section(result: dict[str, Any]) -> list[str]:
    data, task = result.get("data") or {}, result.get("task") or {}
    names, named = class_names(result) if task else ([], False)
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    sizes = data.get("sizes") or {}
    lines = [
        "## Data",
        "",
        f"- source: `{data.get('source')}`, task `{task.get('name')}` ({task.get('group')}, "
        f"{task.get('objective')}), {task.get('num_classes')} classes",
        f"- classes: {shown if named else 'label numbers only (the source names none)'}",
        "- images: " + ", ".join(f"{k} {v}" for k, v in sizes.items() if v is not None),
        f"- preprocessing: resize to {data.get('image_size')} px ({data.get('interpolation') or 'generated'}), "
        f"mean {data.get('mean')}, std {data.get('std')}",
    ]
    if data.get("skipped_images"):
        lines.append(f"- {data['skipped_images']} unreadable image(s) skipped (listed in result.json)")
    return [*lines, ""]


_SKIP_CONFIG = {"method", "task", "data", "backbone", "checkpoint", "backbone_args"}


def _method_section(cfg: dict[str, Any]) -> list[str]:
    args = ", ".join(f"{k}={v}" for k, v in (cfg.get("backbone_args") or []))
    options = ", ".join(
        f"{k} {v}" for k, v in cfg.items() if k not in _SKIP_CONFIG and v not in (None, "", [])
    )
    return [
        "## Method and backbone",
        "",
        f"- method: `{cfg.get('method')}`" + _method_summary(cfg.get("method")),
        f"- backbone: `{cfg.get('backbone')}`"
        + (f" with weights `{cfg['checkpoint']}`" if cfg.get("checkpoint") else "")
        + (f" ({args})" if args else ""),
        f"- configuration: {options}",
        "",
    ]


def _method_summary(name: str | None) -> str:
    from vptlab.errors import UserError
    from vptlab.methods import get_method

    try:
        return f": {get_method(str(name)).summary}"
    except UserError:  # a method of a plugin no longer installed: the card still renders
        return ""


def _metrics_section(result: dict[str, Any], seeds: list[dict] | None) -> list[str]:
    metrics = result.get("metrics") or {}
    lines = ["## Metrics", ""]
    keys = [
        k
        for k in ("train_top1", "val_top1", "test_top1", "train_loss", "val_loss", "test_loss")
        if k in metrics
    ]
    lines += [f"- {k}: {metrics[k]:.4g}" + ("%" if k.endswith("top1") else "") for k in keys]
    if not keys:
        lines.append(
            f"- none: the run ended {result.get('status')}"
            + (f" ({result['error']})" if result.get("error") else "")
        )
    spread = _seed_spread(seeds or [])
    if spread:
        lines.append(spread)
    return [*lines, ""]


def _seed_spread(seeds: list[dict]) -> str:
    for key in ("test_top1", "val_top1"):
        values = [r["metrics"][key] for r in seeds if r.get("status") == "ok" and key in r.get("metrics", {})]
        if len(values) >= 2:
            std = statistics.stdev(values)
            which = ", ".join(
                sorted((str(r["config"].get("seed")) for r in seeds if key in r.get("metrics", {})), key=_num)
            )
            return (
                f"- over {len(values)} seeds ({which}): {key} {statistics.mean(values):.2f} +- {std:.2f}% "
                f"(sample std), min {min(values):.2f}, max {max(values):.2f}"
            )
    return ""


def _num(text: str) -> tuple:
    return (0, int(text), "") if text.lstrip("-").isdigit() else (1, 0, text)


def _cost_section(cost: dict[str, Any] | None) -> list[str]:
    if not cost:
        return []
    if "error" in cost and len(cost) == 1:
        return ["## Cost", "", f"- not measured: {cost['error']}", ""]
    rows = [
        ("trainable parameters (with head)", _count(cost.get("trainable_params"))),
        ("trainable parameters (without head)", _count(cost.get("trainable_params_without_head"))),
        ("all parameters", _count(cost.get("total_params"))),
        ("tuned weights", _bytes(cost.get("tuned_bytes"))),
        ("forward FLOPs per image", _count(cost.get("flops_per_image"))),
        ("training images/s", cost.get("train_images_per_s")),
        ("inference images/s", cost.get("inference_images_per_s")),
        (f"peak memory ({cost.get('peak_memory_kind')})", _bytes(cost.get("peak_memory_bytes"))),
        (f"PPT (V-PETL Bench, from {cost.get('ppt_accuracy')})", cost.get("ppt")),
    ]
    lines = ["## Cost", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows if value is not None]
    if cost.get("device"):
        lines.append(f"\nMeasured on `{cost['device']}` (see `vptlab.train.cost` for how).")
    return [*lines, ""]


def _count(n: int | None) -> str | None:
    return None if n is None else f"{n:,}"


def _bytes(n: int | None) -> str | None:
    if n is None:
        return None
    unit = min(int(math.log(max(n, 1), 1024)), 3)
    return f"{n / 1024**unit:.1f} {('B', 'KiB', 'MiB', 'GiB')[unit]}"


def _use_section(result: dict[str, Any], run_dir: Path) -> list[str]:
    if result.get("status") != "ok":
        return []
    return [
        "## Use it",
        "",
        "```bash",
        f"vptlab predict {run_dir} new-images/ --out predictions.csv   # top-k labels per image",
        f"vptlab export {run_dir} --format onnx                        # or safetensors, torchscript",
        "```",
        "",
        "```python",
        "import vptlab",
        f'tuned = vptlab.load_tuned("{run_dir}")        # the model, its preprocessing and class names',
        'rows = tuned.predict(["photo.jpg"], top_k=3)',
        "```",
        "",
    ]


def refresh_study_cards(study_dir: str | Path) -> int:
    """Rewrite the cards of a study's final runs with the spread over their seeds; returns how many."""
    from vptlab.store.runs import load_results

    groups: dict[tuple, list[dict]] = {}
    for result in load_results(study_dir):
        cfg = result.get("config") or {}
        if cfg.get("stage") != "final":
            continue
        key = tuple(sorted((k, repr(v)) for k, v in cfg.items() if k != "seed"))
        groups.setdefault(key, []).append(result)
    written = 0
    for members in groups.values():
        for result in members:
            write_run_card(result["run_dir"], result, seeds=members)
            written += 1
    return written
