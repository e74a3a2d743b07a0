"""The text ``vptlab study plan`` prints: run counts by stage, method and task, done counts, compute and hours."""

from __future__ import annotations

from vptlab.store.study import StudyStore
from vptlab.study.estimate import (
    Cost,
    Throughput,
    fmt_count,
    measured_devices,
    measured_throughput,
    method_kind,
    stated_throughput,
)
from vptlab.study.overview import GroupPlan, plan_groups, total_cost, totals
from vptlab.study.plan import run_id_of
from vptlab.study.spec import StudySpec
from vptlab.study.state import StudyView, study_state


def plan_report(spec: StudySpec, store: StudyStore | None = None, *, by_task: bool = False,
                list_runs: bool = False, hardware: str | None = None, throughput: float | None = None,
                source: str = "") -> str:  # fmt: skip
    """The whole plan as text."""
    view = StudyView(store.result_of, store.val_at) if store else StudyView(lambda run_id: None)
    plans = plan_groups(spec, view)
    lines = [_header(spec, source), ""]
    lines += _table(plans, by_task)
    t = totals(plans)
    lines.append("")
    lines.append(f"runs: {t['tune'] + t['final']} = {t['tune']} tune + {t['final']} final")
    if store is not None:
        lines.append(f"done in {store.out}: {t['tune_done']} tune + {t['final_done']} final")
    if spec.tune.early_stopping == "sha":
        lines.append(_halving_line(spec))
    lines.append("")
    lines += _compute(spec, plans, hardware, throughput)
    if list_runs:
        lines += ["", *_run_list(spec, view)]
    return "\n".join(lines)


def _header(spec: StudySpec, source: str) -> str:
    t, tasks = spec.training, spec.data.tasks
    return (f"study {spec.name}{f' ({source})' if source else ''}: {len(tasks)} task(s) x {len(spec.methods)} "
            f"method(s) x {len(spec.regimes.names)} regime(s) ({', '.join(spec.regimes.names)}); backbone "
            f"{spec.backbone.name} @ {spec.backbone.image_size}px; {t.epochs} epochs ({t.warmup_epochs} warm-up); "
            f"final seeds {', '.join(map(str, t.seeds))}")  # fmt: skip


def _table(plans: list[GroupPlan], by_task: bool) -> list[str]:
    """Rows of (method, regime) [x task]: tune runs per task, totals, done; final likewise."""
    rows: dict[tuple, list[GroupPlan]] = {}
    for p in plans:
        key = (p.group.method, p.group.regime) + ((p.group.task,) if by_task else ())
        rows.setdefault(key, []).append(p)
    head = ["method", "regime"] + (["task"] if by_task else ["tasks"]) + ["tune/task", "tune", "done",
                                                                           "final", "done", "phase"]  # fmt: skip
    body = []
    for key, group_plans in rows.items():
        per_task = sorted({p.tune_runs for p in group_plans})
        phases = sorted({p.phase for p in group_plans})
        body.append([*key[:2], key[2] if by_task else str(len(group_plans)),
                     "/".join(map(str, per_task)), str(sum(p.tune_runs for p in group_plans)),
                     str(sum(p.tune_done for p in group_plans)), str(sum(p.final_runs for p in group_plans)),
                     str(sum(p.final_done for p in group_plans)), ",".join(phases)])  # fmt: skip
    return _format([head, *body])


def _format(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    numeric = [i >= 3 and i < len(widths) - 1 for i in range(len(widths))]
    return [
        "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(r, widths, numeric)).rstrip()
        for r in rows
    ]


def _halving_line(spec: StudySpec) -> str:
    plan = ", ".join(f"1/{eta} kept at epoch {r}" for r, eta in spec.tune.rungs)
    return (f"early stopping: successive halving, {plan}, survivors to epoch {spec.training.epochs} "
            "(tune run counts are grid points; the cost below is what halving trains)")  # fmt: skip


def _compute(
    spec: StudySpec, plans: list[GroupPlan], hardware: str | None, throughput: float | None
) -> list[str]:
    tune = sum((p.tune_cost for p in plans), Cost())
    final = sum((p.final_cost for p in plans), Cost())
    total = total_cost(plans)
    lines = [
        f"compute: tune {fmt_count(tune.train)} image-steps + {fmt_count(tune.eval)} eval images; "
        f"final {fmt_count(final.train)} image-steps + {fmt_count(final.eval)} eval images; "
        f"total {fmt_count(total.train)} image-steps + {fmt_count(total.eval)} eval images",
    ]
    if spec.tune.early_stopping == "sha":
        grid = sum((p.tune_cost_full_grid for p in plans), Cost())
        lines.append(f"  (the full tune grid would be {fmt_count(grid.train)} image-steps + {fmt_count(grid.eval)} "
                     f"eval images; halving plans {100 * tune.total / max(1, grid.total):.0f}% of it)")  # fmt: skip
    if not total.eval_known:
        lines.append(
            "  (a test-set size is unknown for this data source: those test evaluations are not counted)"
        )
    lines += _hours(spec, plans, hardware, throughput)
    return lines


def _hours(
    spec: StudySpec, plans: list[GroupPlan], hardware: str | None, throughput: float | None
) -> list[str]:
    """Hours from a stated throughput, or from the measured figures for ``hardware``, per method kind."""
    if throughput is None and hardware is None:
        devices = measured_devices()
        known = f" (measured: {', '.join(devices)})" if devices else " (no measured figures recorded yet)"
        return [f"hours: pass --throughput IMG_PER_S, or --hardware NAME for a measured figure{known}"]
    hours, missing = 0.0, set()
    by_kind: dict[str, Cost] = {}
    for p in plans:
        kind = method_kind(p.group.method)
        by_kind[kind] = by_kind.get(kind, Cost()) + p.tune_cost + p.final_cost
    sources = []
    for kind, cost in sorted(by_kind.items()):
        fig = _figure(spec, kind, hardware, throughput)
        if fig is None:
            missing.add(kind)
            continue
        hours += fig.hours(cost)
        sources.append(f"{kind}: {fig.source}")
    if missing:
        return [f"hours on {hardware}: no measured figure for backbone {spec.backbone.name} and method kind(s) "
                f"{', '.join(sorted(missing))} in vptlab/resources/throughput.toml; pass --throughput IMG_PER_S"]  # fmt: skip
    where = f" on {hardware}" if hardware and throughput is None else ""
    return [
        f"hours{where}: {hours:,.1f} ({hours / 24:,.1f} days) on one device",
        *[f"  {s}" for s in sources],
    ]


def _figure(spec: StudySpec, kind: str, hardware: str | None, throughput: float | None) -> Throughput | None:
    if throughput is not None:
        return stated_throughput(throughput)
    return measured_throughput(hardware, spec.backbone.name, kind, spec.backbone.image_size)


def _run_list(spec: StudySpec, view: StudyView) -> list[str]:
    """Every run whose config is known so far (later stages appear once their selection is made)."""
    rows = [["run_id", "stage", "method", "task", "regime", "seed", "lr", "wd", "status"]]
    for state in study_state(spec, view):
        for cfg in (*state.tune, *state.finals):
            result = view.result_of(run_id_of(cfg))
            rows.append([run_id_of(cfg), cfg.stage, cfg.method, cfg.task, cfg.regime, str(cfg.seed), f"{cfg.lr:g}",
                         f"{cfg.wd:g}", result["status"] if result else "todo"])  # fmt: skip
        if state.phase == "waiting":
            rows.append(["-", "tune", state.group.method, state.group.task, state.group.regime, "-", "-", "-",
                         state.note])  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
