"""VPT or FT for *this* data?  The paper's rule, a model fitted on a study's own results, and a quick duel.

Evidence, in the order it is weighed:

1. **The paper's rule** (§4.3-4.4): VPT when the objective is structured (high task disparity), or when it is
   classification and the data is close to the pretraining data (FID at or below the threshold); FT for
   classification far from the pretraining data.  The paper's evidence is at VTAB-1k's 1,000 training images;
   its Figure 4 shows the gap narrowing as data grows and FT passing VPT in most cases by 10,000-20,000 images.
   So from ``LARGE_DATA`` images on, the rule's VPT becomes FT ("data size pushes toward FT"), and between
   ``SMALL_DATA`` and ``LARGE_DATA`` a VPT verdict is marked as weaker.
2. **A study's own model** (``--study DIR``, :mod:`vptlab.analysis.winmodel`): L2-regularised logistic
   regression of "VPT's mean beats FT's" on FID, objective and log10 train size, one sample per (task, regime)
   the study compared.  It is used for the verdict only inside the range it was fitted on (FID within the study's range,
   an objective it saw, train size within a factor of 2 of its sizes); outside, its probability is shown as an
   extrapolation and the rule decides.
3. **A quick head-to-head** (``--quick``): FT and VPT-deep trained briefly at their default hyper-parameters on
   the data's own train split; validation and test accuracy are reported as measured.  Short and untuned, it is
   shown beside the verdict and never overrides it.
4. **Measured signals** (:mod:`vptlab.analysis.signals`): every signal above plus transferability scores of the
   frozen features is scored by leave-one-task-out on the study (or, for ``vptlab-tiny`` without ``--study``,
   on the bundled demo study's comparisons, when the FID is to its upstream set on backbone features).  The recommendation is the prediction of the signal with the best
   held-out accuracy among those computable for this data, with that accuracy; "not enough evidence" when no
   signal beats the majority baseline.  With ``--study``, every method the study ran is ranked as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from vptlab.analysis.fid_threshold import fid_threshold
from vptlab.analysis.quadrants import DISPARITY, paper_expectation
from vptlab.analysis.winmodel import L2, StudyModel, fit_study_model, study_samples
from vptlab.errors import UserError

SMALL_DATA = 2_000
LARGE_DATA = 10_000
IN_PAPER_REGIME = f"data size as in the paper's evidence (<= {SMALL_DATA:,} images)"
OBJECTIVES = ("classification", "structured")


@dataclass(frozen=True)
class RuleVerdict:
    """What the paper's rule says, and why."""

    recommend: str  # "VPT", "FT" or "undetermined"
    reasons: tuple[str, ...]
    confidence: str  # IN_PAPER_REGIME, "weaker (more data)", "size overrides", "no FID threshold"


def paper_rule(objective: str, fid: float, threshold: float | None, train_size: int) -> RuleVerdict:
    """The paper's rule for one data set (see the module docstring)."""
    if objective not in OBJECTIVES:
        raise UserError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    reasons = [f"objective {objective}: {DISPARITY[objective]} task disparity"]
    if objective == "classification" and (threshold is None or not math.isfinite(threshold)):
        reasons.append("no FID threshold to call the FID low or high (give --study or --fid-threshold)")
        return RuleVerdict("undetermined", tuple(reasons), "no FID threshold")
    level = "high" if threshold is not None and fid > threshold else "low"
    if threshold is not None and math.isfinite(threshold):
        reasons.append(
            f"FID {fid:.1f} {'>' if level == 'high' else '<='} threshold {threshold:.1f}: {level} FID"
        )
    verdict = paper_expectation(objective, level)
    reasons.append(f"the paper's quadrant rule gives {verdict}")
    if verdict == "VPT" and train_size >= LARGE_DATA:
        reasons.append(
            f"{train_size} training images >= {LARGE_DATA}: data size pushes toward FT (paper Fig. 4)"
        )
        return RuleVerdict("FT", tuple(reasons), "size overrides")
    if verdict == "VPT" and train_size > SMALL_DATA:
        reasons.append(
            f"{train_size} training images > {SMALL_DATA}: the gap narrows with data (paper Fig. 4)"
        )
        return RuleVerdict("VPT", tuple(reasons), "weaker (more data)")
    return RuleVerdict(verdict, tuple(reasons), IN_PAPER_REGIME)


# --- the quick head-to-head ---------------------------------------------------------------------------------


def quick_head_to_head(
    source: str,
    task: str,
    *,
    backbone: str,
    checkpoint: str | None,
    epochs: int,
    out_dir: Path,
    device: str | None = None,
    vpt_method: str = "vpt-deep",
    skip_bad_images: bool = False,
) -> dict[str, dict]:
    """FT and VPT trained for ``epochs`` at their default hyper-parameters; their val and test top-1."""
    from vptlab.train import RunConfig, train_run

    out = {}
    for method in ("full", vpt_method):
        cfg = RunConfig(
            method=method,
            task=task,
            data=source,
            backbone=backbone,
            checkpoint=checkpoint,
            stage="tune",
            epochs=epochs,
            warmup_epochs=min(1, epochs - 1),
            eval_test_every=epochs,  # test once, at the end (nothing is selected here)
            seed=42,
            skip_bad_images=skip_bad_images,
        ).resolved()
        result = train_run(cfg, out_dir / f"{method}-{cfg.run_id}", device=device, save_weights=False)
        metrics = result.get("metrics") or {}
        out[method] = {
            "status": result["status"],
            "val_top1": metrics.get("val_top1"),
            "test_top1": metrics.get("test_top1"),
            "lr": cfg.lr,
            "wd": cfg.wd,
            "epochs": epochs,
            "seconds": result.get("seconds"),
        }
    return out


# --- putting it together ------------------------------------------------------------------------------------


@dataclass
class Advice:
    """A recommendation and every piece of evidence behind it."""

    data: str
    objective: str
    train_size: int
    fid: float
    features: str
    pretrain: str
    threshold: float | None
    threshold_source: str
    rule: RuleVerdict
    model: StudyModel | None = None
    model_note: str = ""
    model_p: float | None = None
    extrapolations: list[str] = field(default_factory=list)
    quick: dict[str, dict] | None = None
    recommendation: str = "undetermined"
    basis: str = ""
    evidence: str = ""  # where the signals' held-out accuracies come from
    signals: list[dict] = field(default_factory=list)  # each signal: label, prediction, P(VPT), accuracy
    ranking: list[dict] = field(default_factory=list)  # every method the study ran, best first
    backbone: str = (
        ""  # the backbone the advice is for, and how its features are taken (with --features backbone)
    )

    @property
    def quadrant(self) -> str:
        if self.threshold is None or not math.isfinite(self.threshold):
            return f"{DISPARITY[self.objective]} task disparity, FID level unknown"
        level = "high" if self.fid > self.threshold else "low"
        return f"{DISPARITY[self.objective]} task disparity, {level} FID"

    def to_markdown(self) -> str:
        """The recommendation first, then the evidence, as plain text/markdown."""
        lines = [
            f"Recommendation: {self.recommendation} ({self.basis})",
            "",
            f"- data: {self.data} ({self.train_size} training images), objective {self.objective}",
            *([f"- backbone: {self.backbone}"] if self.backbone else []),
            f"- FID to the pretraining data: {self.fid:.2f} ({self.features} features; pretraining side: {self.pretrain})",
            f"- FID threshold: {_fmt_threshold(self.threshold)} ({self.threshold_source})",
            f"- quadrant: {self.quadrant}",
            f"- paper's rule: {self.rule.recommend} [{self.rule.confidence}]: "
            + "; ".join(self.rule.reasons),
        ]
        lines += self._model_lines() + self._quick_lines() + self._signal_lines() + self._ranking_lines()
        return "\n".join(lines)

    def _signal_lines(self) -> list[str]:
        if not self.signals:
            return []
        out = [f"- signals, held-out accuracy on {self.evidence} (95% Wilson interval):"]
        for sig in self.signals:
            p = f", P(VPT) {sig['p_vpt']:.2f}" if sig.get("p_vpt") is not None else ""
            if sig.get("p_interval"):
                p += " (90% bootstrap over tasks {:.2f}-{:.2f})".format(*sig["p_interval"])
            out.append(f"  - {sig['label']}: says {sig['prediction']}{p}; right in {sig['accuracy']}")
        return out

    def _ranking_lines(self) -> list[str]:
        if not self.ranking:
            return []
        out = [f"- methods ranked on the study's {self.ranking[0]['tasks']} {self.objective} task(s) "
               "(mean rank of mean test top-1 per task and regime, 1 = best):"]  # fmt: skip
        for r in self.ranking:
            out.append(
                f"  - {r['method']}: mean rank {r['mean_rank']:.2f} over {r['comparisons']} comparisons, "
                f"best in {r['wins']}, mean test top-1 {r['mean_top1']:.1f}%"
            )
        return out

    def _model_lines(self) -> list[str]:
        if self.model is None:
            return [f"- study model: {self.model_note or 'none (no --study given)'}"]
        coefs = ", ".join(f"{n} {w:+.2f}" for n, w in self.model.coefficients())
        const = (
            "; constant in the study: " + ", ".join(f"{k} = {v:g}" for k, v in self.model.constant.items())
            if self.model.constant
            else ""
        )
        out = [
            f"- study model: logistic regression on {len(self.model.samples)} comparisons over "
            f"{self.model.n_tasks} tasks (L2 {L2:g}): {coefs}{const}",
            f"- study model: P(VPT beats FT) = {self.model_p:.2f}",
        ]
        if self.extrapolations:
            out.append(
                "- study model NOT used for the verdict, it would extrapolate: "
                + "; ".join(self.extrapolations)
            )
        return out

    def _quick_lines(self) -> list[str]:
        if not self.quick:
            return []
        out = []
        for method, r in self.quick.items():
            out.append(
                f"- quick run {method}: status {r['status']}, val top-1 {_pct(r['val_top1'])}, test top-1 "
                f"{_pct(r['test_top1'])} ({r['epochs']} epochs, lr {r['lr']:g}, wd {r['wd']:g}; untuned, indicative only)"
            )
        return out

    def to_dict(self) -> dict:
        from vptlab._io import to_jsonable

        out = to_jsonable(self)
        out["quadrant"] = self.quadrant
        if self.model is not None:
            out["model"] = {
                "coefficients": self.model.coefficients(),
                "n_samples": len(self.model.samples),
                "n_tasks": self.model.n_tasks,
                "constant": self.model.constant,
            }
        return out


def _fmt_threshold(value: float | None) -> str:
    return f"{value:.2f}" if value is not None and math.isfinite(value) else "unknown"


def _pct(value: float | None) -> str:
    return f"{value:.1f}%" if isinstance(value, (int, float)) else "n/a"


def decide(advice: Advice) -> Advice:
    """Fill ``recommendation`` and ``basis``: the study's model inside its range, else the paper's rule."""
    if advice.model is not None and advice.model_p is not None and not advice.extrapolations:
        rec = "VPT" if advice.model_p >= 0.5 else "FT"
        agree = "agrees" if rec == advice.rule.recommend else f"the paper's rule says {advice.rule.recommend}"
        advice.recommendation, advice.basis = rec, f"the study's fitted model; {agree}"
    elif advice.rule.recommend != "undetermined":
        advice.recommendation, advice.basis = (
            advice.rule.recommend,
            f"the paper's rule, {advice.rule.confidence}",
        )
    else:
        advice.recommendation = "undetermined"
        advice.basis = "structured data would get VPT; for classification give --study DIR or --fid-threshold"
    return advice


def parse_data(spec: str) -> tuple[str, str]:
    """A DATA argument as (load_task source, task): ``synthetic:TASK``, ``vtab1k:ROOT/TASK`` or a folder."""
    from vptlab.data import parse_source

    if spec.startswith("synthetic:"):
        return "synthetic", spec.partition(":")[2]
    if spec.startswith("vtab1k:"):
        root, _, task = spec.partition(":")[2].rstrip("/").rpartition("/")
        if not root or not task:
            raise UserError(f"{spec!r}: expected vtab1k:ROOT/TASK")
        return f"vtab1k:{root}", task
    src = parse_source(spec)
    if src.kind == "vtab1k":
        from vptlab.data.sources import resolve_task_source

        return resolve_task_source(spec)
    return str(src), ""


def advise(
    data: str,
    objective: str,
    *,
    features: str = "backbone",
    backbone: str = "vptlab-tiny",
    checkpoint: str | None = None,
    inception_weights: str | None = None,
    pretrain_stats: str | None = None,
    study: str | Path | None = None,
    fid_threshold: float | None = None,
    quick: bool = False,
    quick_epochs: int = 10,
    quick_dir: str | Path | None = None,
    device: str = "cpu",
    skip_bad_images: bool = False,
) -> Advice:
    """Recommend VPT or FT for ``data`` with its evidence (see the module docstring)."""
    from vptlab.analysis.fid import fid_from_stats, image_set_stats
    from vptlab.analysis.fid_features import extractor_image_size, make_extractor
    from vptlab.analysis.task_fid import check_pretraining, pretraining_stats, task_train_images

    if objective not in OBJECTIVES:
        raise UserError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if study and not Path(study).is_dir():
        raise UserError(f"--study {study}: no such folder")
    check_pretraining(backbone, pretrain_stats)
    extractor = make_extractor(
        features, backbone=backbone, checkpoint=checkpoint, inception_weights=inception_weights, device=device
    )
    source, task = parse_data(data)  # the user's data first: its mistakes are the likeliest and cheap to find
    images = task_train_images(source, task, extractor_image_size(extractor), skip_bad_images)
    data_stats = image_set_stats(images, extractor)
    pretrain = pretraining_stats(backbone, extractor, pretrain_stats)
    fid = fid_from_stats(data_stats, pretrain)
    study_fids = _study_fids(study, extractor, pretrain) if study else {}
    threshold, threshold_source = _threshold(
        fid_threshold, study_fids, extractor, pretrain, backbone, pretrain_stats
    )
    advice = Advice(
        data,
        objective,
        len(images),
        fid,
        features,
        pretrain.description or "given statistics",
        threshold,
        threshold_source,
        paper_rule(objective, fid, threshold, len(images)),
        backbone=_describe(backbone, extractor),
    )
    if study:
        _apply_model(advice, load_study_results(study), study_fids)
    if quick:
        advice.quick = _quick(
            source, task, backbone, checkpoint, quick_epochs, quick_dir, device, skip_bad_images
        )
    decide(advice)
    if study or (
        pretrain_stats is None and features == "backbone"
    ):  # the prior's FIDs are to the upstream set
        _apply_signals(advice, images, extractor, pretrain, features, backbone, checkpoint, study, device)
    if study:
        advice.ranking = rank_methods(load_study_results(study), objective)
    return advice


def _apply_signals(
    advice, images, extractor, pretrain, features, backbone, checkpoint, study, device
) -> None:
    """Rest the recommendation on the signal with the best held-out accuracy on the evidence (the study, or the
    bundled demo study for vptlab-tiny); "not enough evidence" when none beats the majority baseline."""
    from vptlab.analysis.fid import fid_from_stats, stats_from_features
    from vptlab.analysis.fid_features import BackboneFeatures
    from vptlab.analysis.signals import Row, bootstrap_p, evaluate, signal_rows
    from vptlab.analysis.task_fid import TINY
    from vptlab.analysis.transfer import all_scores

    bx = extractor if features == "backbone" else BackboneFeatures(backbone, checkpoint, device)
    if study:
        rows, source = signal_rows(
            study, device=device, extractor=bx, pretrain=pretrain if bx is extractor else None
        )
    elif backbone == TINY and checkpoint is None:
        rows, source = signal_rows("prior")
    else:
        return
    ev = evaluate(rows, source)
    feats = bx(images.images)
    scores, _ = all_scores(feats, images.labels)
    fid = advice.fid
    if features != "backbone":
        from vptlab.analysis.task_fid import pretraining_stats

        fid = fid_from_stats(stats_from_features(feats), pretraining_stats(backbone, bx))
    query = Row(
        advice.data, "query", advice.objective, advice.train_size, "tie", False, math.nan, fid, scores
    )
    if advice.quick and all(advice.quick[m].get("val_top1") is not None for m in advice.quick):
        ft, vpt = (advice.quick[m]["val_top1"] for m in advice.quick)
        query.quick = {e: vpt - ft for r in rows for e in r.quick}
    advice.evidence = f"{source} ({ev.scored} clear comparisons, {len({r.task for r in rows})} tasks)"
    fits = {}
    for res in sorted(ev.results, key=lambda r: -(r.overall.rate if r.overall.n else -1)):
        if not res.signal.available(query) or not res.overall.n:
            continue
        predictor = res.signal.fit([r for r in rows if r.winner != "tie" and res.signal.available(r)])
        if predictor is None:
            continue
        fits[res.signal.name] = predictor(query)
        advice.signals.append(
            {
                "signal": res.signal.name,
                "label": res.signal.label,
                "prediction": fits[res.signal.name][0],
                "p_vpt": fits[res.signal.name][1],
                "p_interval": bootstrap_p(res.signal, rows, query),
                "accuracy": _held_out(res.overall),
                "beats_baseline": ev.beats_baseline(res),
            }
        )
    advice.signals.append(
        {
            "signal": "majority",
            "label": f"majority baseline (always {ev.baseline_winner})",
            "prediction": ev.baseline_winner,
            "p_vpt": None,
            "accuracy": _held_out(ev.baseline),
            "beats_baseline": False,
        }
    )
    best = ev.best(lambda sig: sig.name in fits)
    if best is not None and ev.beats_baseline(best):
        advice.recommendation = fits[best.signal.name][0]
        advice.basis = (
            f"{best.signal.label}: this signal picked the winner in {best.overall.k} of {best.overall.n} "
            f"held-out comparisons ({100 * best.overall.rate:.0f}%, 95% CI {100 * best.overall.low:.0f}-"
            f"{100 * best.overall.high:.0f}%) on {source}; always {ev.baseline_winner}: "
            f"{ev.baseline.k} of {ev.baseline.n}"
        )
    else:
        advice.basis = (
            f"not enough evidence: no signal beat always {ev.baseline_winner} ({ev.baseline.k} of "
            f"{ev.baseline.n} held-out comparisons) on {source}; the paper's rule says {advice.rule.recommend}"
        )
        advice.recommendation = "not enough evidence"


def _held_out(acc) -> str:
    return f"{acc.k} of {acc.n} held-out comparisons ({acc.text()})"


def rank_methods(results: list[dict], objective: str) -> list[dict]:
    """Every method with final runs, ranked by its mean rank over the study's (task, regime) groups of this
    objective (only groups where at least two methods ran)."""
    from collections import defaultdict

    import numpy as np

    from vptlab.analysis.results import final_cells

    groups: dict[tuple, list] = defaultdict(list)
    for c in final_cells(results):
        if c.objective == objective:
            groups[(c.task, c.regime)].append(c)
    ranks: dict[str, list[float]] = defaultdict(list)
    wins: dict[str, int] = defaultdict(int)
    accs: dict[str, list[float]] = defaultdict(list)
    tasks = set()
    for key, cells in groups.items():
        if len(cells) < 2:
            continue
        tasks.add(key[0])
        order = sorted(cells, key=lambda c: -c.mean)
        wins[order[0].method] += 1
        for i, c in enumerate(order, start=1):
            ranks[c.method].append(i)
            accs[c.method].append(c.mean)
    out = [
        {
            "method": m,
            "mean_rank": float(np.mean(r)),
            "comparisons": len(r),
            "wins": wins[m],
            "mean_top1": float(np.mean(accs[m])),
            "tasks": len(tasks),
        }
        for m, r in ranks.items()
    ]
    return sorted(out, key=lambda d: (d["mean_rank"], -d["mean_top1"]))


def _describe(backbone: str, extractor) -> str:
    """Which backbone the advice describes; with backbone features, which features (family, pooling)."""
    describe = getattr(extractor, "describe", None)
    return describe() if callable(describe) else f"{backbone} (FID on Inception features)"


def load_study_results(study: str | Path) -> list[dict]:
    """The finished runs of ``--study``; a missing or empty folder is a user error."""
    from vptlab.store import load_results

    if not Path(study).is_dir():
        raise UserError(f"--study {study}: no such folder")
    results = load_results(study)
    if not results:
        raise UserError(f"--study {study}: no finished runs (result.json) under it")
    return results


def _study_fids(study: str | Path, extractor, pretrain) -> dict[str, float]:
    from vptlab.analysis.task_fid import study_task_fids

    fids, _ = study_task_fids(load_study_results(study), extractor, pretrain)
    return {t: f.fid for t, f in fids.items()}


def _threshold(
    explicit, study_fids, extractor, pretrain, backbone, pretrain_stats
) -> tuple[float | None, str]:
    """The FID threshold and where it came from: the rule the report also uses
    (:mod:`vptlab.analysis.fid_threshold`), the built-in synthetic tasks as reference for vptlab-tiny."""
    reference = None
    if backbone == "vptlab-tiny" and pretrain_stats is None:
        reference = lambda: synthetic_reference_fids(extractor, pretrain)  # noqa: E731
    rule = fid_threshold(study_fids, given=explicit, reference=reference, what="study's {n} tasks")
    return rule.value, rule.source


def synthetic_reference_fids(extractor, pretrain) -> dict[str, float]:
    from vptlab.analysis.fid import fid_from_stats, image_set_stats
    from vptlab.analysis.fid_features import extractor_image_size
    from vptlab.analysis.task_fid import task_train_images
    from vptlab.data.synthetic import SYNTHETIC_TASKS

    size = extractor_image_size(extractor)
    return {
        t: fid_from_stats(image_set_stats(task_train_images("synthetic", t, size), extractor), pretrain)
        for t in SYNTHETIC_TASKS
    }


def _apply_model(advice: Advice, results: list[dict], fids: dict[str, float]) -> None:
    model, note = fit_study_model(study_samples(results, fids))
    advice.model, advice.model_note = model, note
    if model is not None:
        advice.model_p = model.predict(advice.fid, advice.objective, advice.train_size)
        advice.extrapolations = model.extrapolations(advice.fid, advice.objective, advice.train_size)


def _quick(source, task, backbone, checkpoint, epochs, quick_dir, device, skip_bad_images) -> dict[str, dict]:
    import tempfile

    if epochs < 1:
        raise UserError(f"--quick-epochs must be >= 1, got {epochs}")
    out = Path(quick_dir) if quick_dir else Path(tempfile.mkdtemp(prefix="vptlab-advise-"))
    return quick_head_to_head(
        source,
        task,
        backbone=backbone,
        checkpoint=checkpoint,
        epochs=epochs,
        out_dir=out,
        device=device,
        skip_bad_images=skip_bad_images,
    )
