"""The report's sections, one function each; every one records the numbers the summary needs in ``study.facts``."""

from __future__ import annotations

import logging
from collections import Counter

from vptlab.analysis import curves, quadrants, tables
from vptlab.analysis.fid_threshold import RULE_TEXT, fid_threshold
from vptlab.analysis.results import FT, compare, method_label
from vptlab.errors import UserError
from vptlab.report.benchmarks import benchmark_sections
from vptlab.report.context import ReportOptions, Study, figure
from vptlab.report.cost import cost_section
from vptlab.report.render import Section

log = logging.getLogger(__name__)


def build_sections(study: Study, opts: ReportOptions) -> list[Section]:
    """Every section after the summary, in the report's order."""
    return [
        overview(study),
        accuracy(study, opts),
        quadrant_section(study, opts),
        overfitting(study, opts),
        data_size(study),
        one_shot(study, opts),
        *benchmark_sections(study),  # FGVC, few-shot, robustness (vptlab.report.benchmarks)
        cost_section(study.results),  # vptlab.report.cost: accuracy vs trainable parameters, cost profiles
        attention_section(study, opts),
        advisor_section(study),
        notes(study, opts),
    ]


def advisor_section(study: Study) -> Section:
    """How far to trust the advisor: the saved leave-one-task-out evaluation (``vptlab advise --evaluate``)."""
    from vptlab.analysis.signals import CACHE, evaluate, evaluation_markdown, load_rows

    s = Section("How far to trust the advisor")
    saved = sorted(study.root.glob(CACHE.replace(".csv", "-*.csv")))
    if not saved:
        s.p(f"Run `vptlab advise --evaluate {study.root}` to measure every advisor signal on this study.")
        return s
    for path in saved:
        try:
            rows = load_rows(path)
        except UserError as err:
            s.p(f"`{path.name}` could not be read: {err}")
            continue
        text = evaluation_markdown(evaluate(rows, path.name))
        head, _, rest = text.partition("\n\n")
        s.p(head)
        for block in rest.split("\n\n"):
            (s.table if block.startswith("|") else s.p)(block)
    return s


# --- what the study ran -------------------------------------------------------------------------------------


def overview(study: Study) -> Section:
    """What ran: runs by stage and status, backbone, methods, tasks, regimes, seeds, runs left out."""
    s = Section("What the study ran")
    cfgs = [r.get("config") or {} for r in study.results]
    stages = Counter((c.get("stage", "?"), r.get("status", "?")) for c, r in zip(cfgs, study.results))
    backbone, checkpoint = study.backbone()
    seeds = sorted({int(c.get("seed", 0)) for c in cfgs if c.get("stage") == "final"})
    s.ul(
        [
            f"study folder: `{study.root}`; {len(study.results)} finished run records",
            "runs by stage and status: "
            + ", ".join(f"{st}/{ok}: {n}" for (st, ok), n in sorted(stages.items())),
            f"backbone: {backbone}" + (f" (checkpoint {checkpoint})" if checkpoint else ""),
            "methods: "
            + (", ".join(sorted({method_label(c.method) for c in study.cells})) or "none with final runs"),
            "tasks: " + (", ".join(sorted({c.task for c in study.cells})) or "none with final runs"),
            "regimes with final runs: " + (", ".join(study.regimes) or "none"),
            "final seeds: " + (", ".join(map(str, seeds)) or "none"),
        ]
    )
    excluded = [(c, st) for c in study.cells for st in c.excluded]
    if excluded:
        s.p(
            "Final runs left out of every mean (not status ok): "
            + ", ".join(f"{method_label(c.method)}/{c.task}/{c.regime}: {st}" for c, st in excluded)
            + "."
        )
    study.facts["excluded"] = len(excluded)
    if study.no_result:
        s.p(
            "No accuracy (every run ended so; the tables say so in place of a number): "
            + ", ".join(f"{method_label(m.method)}/{m.task}/{m.regime}: {m.status}" for m in study.no_result)
            + "."
        )
    return s


# --- Tables 1 and 2 -----------------------------------------------------------------------------------------


def accuracy(study: Study, opts: ReportOptions) -> Section:
    """Tables 1 and 2: final test top-1 per task and method, group means with wins, published rows."""
    s = Section("Accuracy per task (the paper's Tables 1 and 2)")
    shown = [*study.cells, *study.no_result]
    if not any(c.regime == "standard" for c in shown):
        s.p("No final runs in the standard regime (train800val200 -> test) in this study.")
        return _tune_runs(s, study.results)
    s.p(
        f"Last-epoch test top-1 (%), mean ± {_std_name(opts.ddof)} over seeds of the final runs. The group mean "
        'columns carry "(wins)": the number of the group\'s tasks on which the method beats FT. Bold: the better '
        f"of FT and {method_label(study.vpt) if study.vpt else 'VPT'} per task."
    )
    _paper_tables(s, study, opts, "standard", tuned_row=False)
    if not tables.has_published(study.cells, "standard"):
        s.p(
            "No published numbers shown: the study's tasks are not VTAB-1k tasks (synthetic or your own data)."
        )
    _record_wins(study)
    return s


def _tune_runs(s: Section, results: list[dict]) -> Section:
    """Tune-stage runs have no test numbers: say so, show their validation accuracy, and say what to run."""
    tune = [r for r in results if (r.get("config") or {}).get("stage") == "tune" and r.get("status") == "ok"]
    if not tune:
        return s
    s.p(
        f"This folder holds {len(tune)} tune-stage run(s): they train on the train split and measure the "
        "validation split, to choose hyper-parameters; they have no test accuracy, so they are not in the "
        "accuracy tables. Their last-epoch validation top-1 is listed below as measured. For test numbers, "
        "train a final run (`vptlab train ... --stage final`, the default of `vptlab train`: train+val -> test) "
        "or run a study (`vptlab study run`), which tunes, selects and trains the final seeds itself."
    )
    rows = [
        "| method | task | lr | wd | seed | epochs | val top-1 (%) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(tune, key=lambda r: (r["config"].get("task", ""), r["config"].get("method", ""))):
        c, m = r["config"], r.get("metrics") or {}
        val = f"{m['val_top1']:.1f}" if isinstance(m.get("val_top1"), (int, float)) else "–"
        rows.append(f"| {method_label(c.get('method', '?'))} | {c.get('task')} | {c.get('lr')} | {c.get('wd')} | "
                    f"{c.get('seed')} | {r.get('epochs_done')} | {val} |")  # fmt: skip
    return s.table("\n".join(rows), "Tune-stage runs (validation only)")


def _std_name(ddof: int) -> str:
    return "np.std (ddof 0, as the seed paper)" if ddof == 0 else "sample std (ddof 1)"


def _paper_tables(s: Section, study: Study, opts: ReportOptions, regime: str, *, tuned_row: bool) -> None:
    """The regime's tables (one per group split) with published rows, and the notes that explain them."""
    differences = study.paper_backbone
    for title, groups in tables.table_groups([*study.cells, *study.no_result], regime):
        table = tables.accuracy_table(
            study.cells,
            regime,
            groups,
            tuned_row=tuned_row,
            no_result=study.no_result,
            ddof=opts.ddof,
            differences=differences,
        )
        s.table(table, f"{title} tasks")
    notes = tables.published_notes(study.cells, regime, ddof=opts.ddof, differences=differences)
    if notes and not differences:
        notes.append(
            f"No ours − published rows: the study's backbone ({study.backbone()[0]}) is not the paper's (Google's "
            "original ImageNet-21k ViT-B/16: timm `vit_base_patch16_224.orig_in21k` or `ViT-B_16.npz`), so the "
            "differences would not measure a reproduction."
        )
    if notes:
        s.ul(notes)


def _record_wins(study: Study) -> None:
    comps = compare(study.cells, "standard", study.vpt)
    study.facts["standard"] = comps


# --- quadrants ----------------------------------------------------------------------------------------------


def quadrant_section(study: Study, opts: ReportOptions) -> Section:
    """Figure 3 and the 2x2 wins table: FID to the pretraining data x objective, coloured by winner."""
    s = Section("Quadrants: task disparity x FID (the paper's Figure 3)")
    comps = study.facts.get("standard") or compare(study.cells, "standard", study.vpt)
    if not comps:
        return s.p(
            "Needs final runs of both FT and a VPT method in the standard regime; this study has none."
        )
    fids, how = _task_fids(study, opts)
    if not fids:
        return s.p(f"No FID per task: {how}")
    rule = fid_threshold(
        {c.task: fids[c.task] for c in comps if c.task in fids},
        given=opts.fid_threshold,
        reference=study.facts.get("fid_reference"),
        what="{n} tasks below",
    )
    placed, cut = quadrants.assign_quadrants(comps, fids, rule=rule)
    study.facts.update(fids=fids, fid_features=how, quadrants=placed, fid_threshold=cut, fid_rule=rule)
    s.p(FID_IN_WORDS)
    threshold = f"{cut:.2f} ({rule.source})" if rule.determined else rule.source
    s.p(
        f"FID of each task's training images (train800val200) to the pretraining data: {how}. FID threshold: "
        f"{threshold}; a task is *high FID* above it. Task disparity: low for classification, high for "
        "structured objectives. A win is *clear* when |VPT - FT| > std_FT + std_VPT over seeds (Welch's t-test p "
        "shown beside it)."
    )
    s.table(quadrants.wins_markdown(placed), "Wins per quadrant (paper's expectation in brackets)")
    s.table(quadrants.quadrant_rows_markdown(placed), "Per task")
    fig = quadrants.figure3(
        placed, cut, "FID to pretraining data; colour: winner, hatched: structured objective"
    )
    s.figure(
        figure(
            "fig3_quadrants.png",
            fig,
            "FID per task, coloured by the winner (FT or VPT), hatched when the objective is structured; dashed: the FID threshold.",
        )
    )
    missing = sorted({c.task for c in comps} - set(fids))
    if missing:
        s.p("Tasks without an FID (left out above): " + ", ".join(missing) + ".")
    return s


FID_IN_WORDS = (
    "What this section shows, in plain words: FID (Fréchet Inception Distance) measures how different a task's "
    "images are from the images the backbone was pretrained on: 0 means the same distribution, larger means "
    "more different; its scale depends on the feature network, so it is only compared between tasks measured "
    "the same way. The paper sorts tasks into four quadrants by two questions: is the task's objective like "
    "the pretraining one (classification: low task disparity) or not (structured: counting, distance, "
    "orientation; high task disparity), and are its images close to the pretraining images (low FID) or far "
    "(high FID)? Its claim: VPT wins in three quadrants, FT only on classification far from the pretraining "
    f"data. Low and high need a threshold; the rule: {RULE_TEXT}."
)


def _task_fids(study: Study, opts: ReportOptions) -> tuple[dict[str, float], str]:
    """Task -> FID from a CSV if given, else computed; with a description (or the reason there are none)."""
    if opts.fid_csv:
        return _read_fid_csv(opts.fid_csv), f"read from {opts.fid_csv}"
    if opts.fid_features == "none":
        return {}, "FID computation turned off (--fid-features none)."
    from vptlab.analysis.fid_features import make_extractor
    from vptlab.analysis.task_fid import pretraining_stats, study_task_fids

    backbone, checkpoint = study.backbone()
    name = opts.fid_backbone or backbone
    try:
        extractor = make_extractor(
            opts.fid_features,
            backbone=name,
            checkpoint=None if opts.fid_backbone else checkpoint,
            inception_weights=opts.inception_weights,
            device=opts.device,
        )
        pretrain = pretraining_stats(name, extractor, opts.pretrain_stats)
        fids, skipped = study_task_fids(study.results, extractor, pretrain)
    except UserError as err:
        return {}, f"{err}."
    except (
        RuntimeError,
        OSError,
        ValueError,
    ) as err:  # a model or file problem: the report still gets written
        log.warning("FID per task failed: %s", err)
        return {}, f"computing FID failed ({type(err).__name__}: {err})."
    for task, why in skipped.items():
        log.warning("no FID for %s: %s", task, why)
    if (
        name == "vptlab-tiny" and opts.pretrain_stats is None
    ):  # the FID rule's reference set, as advise uses it
        from vptlab.analysis.advisor import synthetic_reference_fids

        study.facts["fid_reference"] = lambda: synthetic_reference_fids(extractor, pretrain)
    what = f"{opts.fid_features} features ({extractor.key}), pretraining side {pretrain.description or opts.pretrain_stats}"
    return {t: f.fid for t, f in fids.items()}, what


def _read_fid_csv(path: str) -> dict[str, float]:
    import csv
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise UserError(f"--fid-csv {p}: no such file")
    rows = csv.DictReader(line for line in p.read_text().splitlines() if line and not line.startswith("#"))
    try:
        return {r["task"]: float(r["fid"]) for r in rows}
    except (KeyError, ValueError) as err:
        raise UserError(f"--fid-csv {p}: expected columns task,fid with numeric fid ({err})") from err


# --- Figure 5: loss curves ---------------------------------------------------------------------------------


def overfitting(study: Study, opts: ReportOptions) -> Section:
    """Figure 5: loss curves, and the overfitting flag per task, regime and method."""
    s = Section("Loss curves and overfitting (the paper's Figure 5)")
    rows = curves.overfit_rows(study.cells, opts.overfit_tolerance)
    if not rows:
        return s.p(
            "No per-epoch test loss in the final runs' metrics.jsonl (eval_test_every = 0?), so no curves."
        )
    tol = opts.overfit_tolerance
    s.p(
        "Per-epoch train (solid) and test (dashed) loss, mean over seeds. *Overfits*: after the epoch of its "
        f"minimum, the test loss averages more than {tol:.0%} above that minimum over the remaining epochs."
    )
    fig = curves.loss_figure(study.cells, "standard")
    if fig is not None:
        s.figure(
            figure(
                "fig5_loss_curves.png",
                fig,
                "Train (solid) and test (dashed) loss per epoch, standard regime.",
            )
        )
    s.table(curves.overfit_markdown(rows, tol), "Overfitting check per task, regime and method")
    study.facts["overfit"] = rows
    return s


# --- Figure 4: data size ----------------------------------------------------------------------------------


def data_size(study: Study) -> Section:
    """Figure 4: FT and VPT accuracy against the train size of the size:N runs."""
    s = Section("Accuracy against training-set size (the paper's Figure 4)")
    table = curves.size_markdown(study.cells)
    if table is None:
        return s.p("No size:N runs of FT and VPT in this study (the data-size study is the `size:N` regime).")
    fig = curves.size_figure(study.cells)
    s.figure(
        figure(
            "fig4_data_size.png",
            fig,
            "Test top-1 against train size N (log): FT solid, VPT dotted, one colour per task.",
        )
    )
    s.table(table, "Test top-1 (%), mean ± std over seeds")
    trend = curves.gap_trend(study.cells)
    study.facts["size_trend"] = trend
    if trend:
        s.ul([f"{t}: VPT - FT {lo:+.1f} at N={nlo}, {hi:+.1f} at N={nhi}" for t, lo, hi, nlo, nhi in trend])
    return s


# --- Tables 3 and 4: one-shot -------------------------------------------------------------------------------


def one_shot(study: Study, opts: ReportOptions) -> Section:
    """Tables 3 and 4: the kshot:1 runs, with the tuned/total parameter share and the published one-shot rows."""
    s = Section("One-shot (the paper's Tables 3 and 4)")
    shown = [*study.cells, *study.no_result]
    if not any(c.regime == "kshot:1" for c in shown):
        return s.p("No kshot:1 final runs in this study.")
    s.p(
        "One labelled image per class (train and val pools), test untouched. Last-epoch test top-1 (%), mean ± "
        f'{_std_name(opts.ddof)} over seeds; "Tuned/Total": trainable parameters as a share of all parameters, '
        "from the runs' records."
    )
    _paper_tables(s, study, opts, "kshot:1", tuned_row=True)
    study.facts["oneshot"] = compare(study.cells, "kshot:1", study.vpt)
    return s


# --- attention maps -----------------------------------------------------------------------------------------


def attention_section(study: Study, opts: ReportOptions) -> Section:
    """FT and VPT attention maps on the same test images, and where the CLS token's attention goes."""
    s = Section("Attention maps: FT vs VPT on the same images")
    if not opts.attention:
        return s.p("Attention maps turned off (--no-attention).")
    pairs = _attention_pairs(study, opts.attention_tasks)
    if not pairs:
        return s.p(
            "Needs FT and VPT final runs with saved tuned weights (tuned.safetensors) on a task; none found."
        )
    from vptlab.analysis.attention import attention_for_runs

    s.p(
        "Last-layer CLS attention and attention rollout (Abnar & Zuidema 2020), head-averaged, over image patches "
        "only: prompt tokens are left out of the maps and the maps renormalised over patches; the share of the CLS "
        "token's last-layer attention that goes to the prompts is given per image and in the table."
    )
    rows = []
    for ft_dir, vpt_dir, task in pairs:
        try:
            runs = {"FT": ft_dir, method_label(study.vpt): vpt_dir}
            fig, shares = attention_for_runs(runs, opts.attention_images, opts.device)
        except (UserError, RuntimeError, OSError) as err:
            s.p(f"{task}: could not draw attention maps ({err}).")
            continue
        s.figure(
            figure(
                f"attention_{task}.png",
                fig,
                f"{task}: image, FT and VPT CLS attention (last layer, rollout).",
            )
        )
        rows += [(task, name, sh) for name, sh in shares.items()]
    if rows:
        s.table(_shares_markdown(rows), "Where the CLS token looks (last layer, mean over the images shown)")
    study.facts["attention"] = rows
    return s


def _attention_pairs(study: Study, limit: int) -> list[tuple[str, str, str]]:
    """(FT run dir, VPT run dir, task) for up to ``limit`` tasks with saved weights, one per group first."""
    candidates = []
    for comp in compare(study.cells, "standard", study.vpt):
        ft, vp = _with_weights(comp.ft.run_dirs), _with_weights(comp.vpt.run_dirs)
        if ft and vp:
            candidates.append((comp.group, (ft[0], vp[0], comp.task)))
    firsts, seen = [], set()
    for group, pair in candidates:
        if group not in seen:
            seen.add(group)
            firsts.append(pair)
    rest = [pair for _, pair in candidates if pair not in firsts]
    return (firsts + rest)[:limit]


def _with_weights(run_dirs: tuple[str, ...]) -> list[str]:
    from pathlib import Path

    return [d for d in run_dirs if (Path(d) / "tuned.safetensors").is_file()]


def _shares_markdown(rows: list[tuple[str, str, dict]]) -> str:
    lines = [
        "| task | model | prompts | CLS -> CLS | CLS -> prompts | CLS -> patches | rollout share to prompts | map entropy (bits) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for task, name, sh in rows:
        lines.append(
            f"| {task} | {name} | {int(sh['num_prompts'])} | {sh['cls_share']:.1%} | {sh['prompt_share']:.1%} | "
            f"{sh['patch_share']:.1%} | {sh['rollout_prompt_share']:.1%} | {sh['map_entropy_bits']:.2f} |"
        )
    return "\n".join(lines)


# --- notes -----------------------------------------------------------------------------------------------


def notes(study: Study, opts: ReportOptions) -> Section:
    """The definitions behind every number in the report."""
    s = Section("How the numbers were made")
    s.ul(
        [
            "Final runs only (config.stage = final, status ok): train on train+val, last-epoch test top-1; mean and "
            "sample std over seeds. The report reads only these runs' result files; tune runs (validation, where the "
            "study selects hyper-parameters) are counted above but never averaged.",
            f"FT = method `{FT}`; VPT = `{study.vpt or 'none'}` (VPT-deep when the study has it).",
            "Clear win: |mean_VPT - mean_FT| > std_FT + std_VPT (needs two seeds per method).",
            "FID: pytorch-fid's Fréchet distance formula; statistics cached per image-set manifest and feature "
            f"extractor; threshold: {RULE_TEXT}.",
            f"Overfitting: mean test loss after its minimum > (1 + {opts.overfit_tolerance:g}) x minimum.",
            "Published numbers come only from the packaged files (the seed paper's Tables 1-4, then the VPT "
            "paper's) and are labelled as published; ours − published rows appear only for the paper's backbone.",
        ]
    )
    return s
