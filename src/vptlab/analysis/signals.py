"""How far to trust the advisor: every signal it can use, measured by leave-one-task-out on a finished study.

A study gives one *comparison* per (task, regime) with FT and VPT final runs: the winner by mean test top-1, and
whether the gap is *clear* (``|gap| > std_FT + std_VPT``, see :mod:`vptlab.analysis.results`).  Each comparison
also gets the features a signal may use: the task's FID to the pretraining data, its objective, the training-set
size, transferability scores of the frozen backbone's features on the regime's training images
(:mod:`vptlab.analysis.transfer`), and the quick head-to-head at a few budgets read from the tune runs.

A *signal* turns features into a predicted winner.  Leave-one-task-out: for every task, the signals are fitted on
the comparisons of the other tasks (ties left out) and predict the held-out task's comparisons; a prediction
counts only on a clear comparison.  Accuracy comes with a 95% Wilson score interval
(``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``) and beside it the majority-class baseline (the
accuracy of always naming the more frequent winner of the scored comparisons, a number no signal gets to choose).

Signals:

- ``rule``: the paper's quadrant rule, the FID threshold the median FID of the other tasks.
- ``winmodel``: the study's logistic model on FID, objective and log10 size (:mod:`vptlab.analysis.winmodel`).
- ``logme``, ``h_score``, ``knn``, ``linear_probe``: one score each, turned into a winner by a one-feature
  logistic regression fitted on the other tasks (high transferability favouring VPT if the fit says so).
- ``quick@E``: the head-to-head after E of the protocol's epochs: each method's best grid point by validation top-1
  at epoch E (what a successive-halving rung keeps), the better method wins.  Read from the study's tune runs (the
  same runs, stopped early), its cost the training seconds those runs took to epoch E.  Nothing is fitted.
- ``combined``: L2 logistic regression over every feature that costs no training (FID, objective, size, the four
  scores); ``combined+quick``: the same plus the quick head-to-head's validation gap at the smallest budget.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vptlab.analysis.transfer import SCORE_LABELS, SCORES
from vptlab.errors import UserError

CONFIDENCE = 0.95
CI_METHOD = "wilson"
QUICK_FRACTIONS = (0.2, 0.4, 0.6)
L2 = 1.0
CALIBRATION_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
PRIOR_FILE = "advisor_prior.csv"


@dataclass
class Row:
    """One FT-vs-VPT comparison and the features the signals read (NaN: not available)."""

    task: str
    regime: str
    objective: str
    train_size: int
    winner: str  # "VPT", "FT" or "tie"
    clear: bool
    gap: float = math.nan  # VPT mean - FT mean (test top-1 points)
    fid: float = math.nan
    scores: dict[str, float] = field(default_factory=dict)
    quick: dict[int, float] = field(default_factory=dict)  # epoch -> VPT best val - FT best val
    quick_seconds: dict[int, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # "features", "fid", and each score's

    def feature(self, name: str) -> float:
        if name == "fid":
            return self.fid
        if name == "structured":
            return 1.0 if self.objective == "structured" else 0.0
        if name == "log_size":
            return math.log10(max(self.train_size, 1))
        if name.startswith("quick@"):
            return self.quick.get(int(name[6:]), math.nan)
        return self.scores.get(name, math.nan)


# --- signals ------------------------------------------------------------------------------------------------

Predictor = Callable[[Row], tuple[str, float | None]]  # -> (winner, P(VPT wins) or None)


@dataclass(frozen=True)
class Signal:
    """A way to name the winner: ``fit(rows)`` returns a predictor (None: cannot be fitted on these rows)."""

    name: str
    label: str
    needs: tuple[str, ...]
    fit: Callable[[list[Row]], Predictor | None]
    probabilistic: bool
    cost: Callable[[Row], float]

    def available(self, row: Row) -> bool:
        return all(math.isfinite(row.feature(n)) for n in self.needs)


def _rule_fit(rows: list[Row]) -> Predictor | None:
    from vptlab.analysis.advisor import paper_rule

    fids = {r.task: r.fid for r in rows if math.isfinite(r.fid)}
    if not fids:
        return None
    threshold = float(np.median(list(fids.values())))

    def predict(row: Row) -> tuple[str, float | None]:
        return paper_rule(row.objective, row.fid, threshold, row.train_size).recommend, None

    return predict


def logistic_fit(rows: list[Row], names: tuple[str, ...], l2: float = L2) -> Predictor | None:
    """L2 logistic regression of "VPT wins" on standardised features (scikit-learn, lbfgs, intercept free)."""
    from sklearn.linear_model import LogisticRegression

    usable = [r for r in rows if r.winner != "tie" and all(math.isfinite(r.feature(n)) for n in names)]
    y = np.array([r.winner == "VPT" for r in usable], dtype=int)
    if len(usable) < 4 or y.min() == y.max():
        if usable:  # one-sided evidence: predict that side with its observed rate
            rate = float(y.mean())
            return lambda row: ("VPT" if rate >= 0.5 else "FT", rate)
        return None
    x = np.array([[r.feature(n) for n in names] for r in usable])
    center, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    model = LogisticRegression(C=1.0 / l2).fit((x - center) / scale, y)

    def predict(row: Row) -> tuple[str, float | None]:
        z = (np.array([[row.feature(n) for n in names]]) - center) / scale
        p = float(model.predict_proba(z)[0, 1])
        return ("VPT" if p >= 0.5 else "FT"), p

    return predict


def _quick_fit(epoch: int) -> Callable[[list[Row]], Predictor]:
    def fit(rows: list[Row]) -> Predictor:
        vpt = sum(r.winner == "VPT" for r in rows)
        fallback = "VPT" if vpt > len(rows) - vpt else "FT"  # a tie at the budget: the majority elsewhere

        def predict(row: Row) -> tuple[str, float | None]:
            gap = row.quick[epoch]
            return ("VPT" if gap > 0 else "FT" if gap < 0 else fallback), None

        return predict

    return fit


def _cost(*parts: str) -> Callable[[Row], float]:
    return lambda row: float(sum(row.seconds.get(p, math.nan) for p in parts))


FREE = ("fid", "structured", "log_size", *SCORES)


def signals_for(rows: list[Row]) -> list[Signal]:
    """Every signal, with the quick budgets the rows have."""
    out = [
        Signal("rule", "paper's rule (FID threshold x objective)", ("fid",), _rule_fit, False, _cost("fid")),
        Signal(
            "winmodel",
            "win model (FID, objective, size)",
            ("fid", "structured", "log_size"),
            lambda rs: logistic_fit(rs, ("fid", "structured", "log_size")),
            True,
            _cost("fid"),
        ),
    ]
    for s in SCORES:
        out.append(
            Signal(
                s,
                SCORE_LABELS[s],
                (s,),
                lambda rs, s=s: logistic_fit(rs, (s,)),
                True,
                _cost("features", s),
            )
        )
    out.append(
        Signal(
            "combined",
            "combined (FID, objective, size, 4 scores)",
            FREE,
            lambda rs: logistic_fit(rs, FREE),
            True,
            _cost("fid", "features", *SCORES),
        )
    )
    epochs = sorted({e for r in rows for e in r.quick})
    for e in epochs:
        out.append(
            Signal(
                f"quick@{e}",
                f"quick head-to-head, {e} epoch(s)",
                (f"quick@{e}",),
                _quick_fit(e),
                False,
                lambda row, e=e: row.quick_seconds.get(e, math.nan),
            )
        )
    if epochs:
        names = (*FREE, f"quick@{epochs[0]}")
        out.append(
            Signal(
                "combined+quick",
                f"combined + quick head-to-head at {epochs[0]} epoch(s)",
                names,
                lambda rs: logistic_fit(rs, names),
                True,
                lambda row: (
                    _cost("fid", "features", *SCORES)(row) + row.quick_seconds.get(epochs[0], math.nan)
                ),
            )
        )
    return out


def bootstrap_p(
    signal: Signal, rows: list[Row], query: Row, reps: int = 200, seed: int = 0
) -> tuple[float, float] | None:
    """A 90% interval of ``signal``'s P(VPT wins) for ``query``: refitted on ``reps`` resamples of the evidence's
    tasks (with replacement; a task brings all its comparisons).  None for a signal without a probability."""
    if not signal.probabilistic:
        return None
    rng = np.random.default_rng(seed)
    usable = [r for r in rows if r.winner != "tie" and signal.available(r)]
    tasks = sorted({r.task for r in usable})
    by_task = {t: [r for r in usable if r.task == t] for t in tasks}
    ps = []
    for _ in range(reps):
        sample = [r for t in rng.choice(tasks, size=len(tasks), replace=True) for r in by_task[t]]
        predictor = signal.fit(sample)
        if predictor is not None:
            p = predictor(query)[1]
            if p is not None:
                ps.append(p)
    if not ps:
        return None
    return float(np.quantile(ps, 0.05)), float(np.quantile(ps, 0.95))


# --- leave-one-task-out -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accuracy:
    """k right of n, with a binomial confidence interval."""

    k: int
    n: int
    low: float = math.nan
    high: float = math.nan

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else math.nan

    def text(self) -> str:
        if not self.n:
            return "n/a (no clear comparisons)"
        return f"{self.k}/{self.n} = {100 * self.rate:.0f}% [{100 * self.low:.0f}, {100 * self.high:.0f}]"


def accuracy(k: int, n: int) -> Accuracy:
    """``k`` of ``n`` with its 95% Wilson score interval (scipy)."""
    if n == 0:
        return Accuracy(0, 0)
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method=CI_METHOD)
    return Accuracy(k, n, float(ci.low), float(ci.high))


@dataclass
class SignalResult:
    signal: Signal
    predictions: list[tuple[Row, str, float | None]]  # held-out (row, predicted winner, P(VPT))
    overall: Accuracy
    by_regime: dict[str, Accuracy]
    seconds: float  # median cost per comparison

    @property
    def calibration(self) -> list[tuple[str, int, float, float]]:
        """(P bin, comparisons, mean predicted P(VPT), observed VPT-win fraction) over scored comparisons."""
        pairs = [(p, r.winner == "VPT") for r, _, p in self.predictions if p is not None and _scored(r)]
        out = []
        edges = CALIBRATION_BINS
        for lo, hi in zip(edges[:-1], edges[1:]):
            inside = [(p, w) for p, w in pairs if lo <= p < hi or (hi == 1.0 and p == 1.0)]
            if inside:
                out.append(
                    (
                        f"{lo:.1f}-{hi:.1f}",
                        len(inside),
                        float(np.mean([p for p, _ in inside])),
                        float(np.mean([w for _, w in inside])),
                    )
                )
        return out

    @property
    def brier(self) -> float:
        from sklearn.metrics import brier_score_loss

        pairs = [(p, r.winner == "VPT") for r, _, p in self.predictions if p is not None and _scored(r)]
        if not pairs:
            return math.nan
        return float(brier_score_loss([int(w) for _, w in pairs], [p for p, _ in pairs]))


def _scored(row: Row) -> bool:
    return row.clear and row.winner in ("VPT", "FT")


@dataclass
class Evaluation:
    """Every signal's held-out accuracy on one study, and the majority baseline."""

    source: str
    rows: list[Row]
    results: list[SignalResult]
    baseline: Accuracy
    baseline_winner: str
    baseline_by_regime: dict[str, Accuracy]
    fitted_on: str = ""  # "": leave-one-task-out; else each signal was fitted on this other study

    @property
    def scored(self) -> int:
        return sum(_scored(r) for r in self.rows)

    def best(self, usable: Callable[[Signal], bool] = lambda s: True) -> SignalResult | None:
        """The signal with the most held-out comparisons right (rate, then more evidence, then cheaper)."""
        cands = [r for r in self.results if r.overall.n and usable(r.signal)]
        if not cands:
            return None
        return max(cands, key=lambda r: (r.overall.rate, r.overall.n, -_finite(r.seconds)))

    def beats_baseline(self, result: SignalResult) -> bool:
        return result.overall.n > 0 and result.overall.rate > self.baseline.rate

    def to_markdown(self) -> str:
        return evaluation_markdown(self)


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 1e12


def evaluate(rows: list[Row], source: str = "", fit_rows: list[Row] | None = None) -> Evaluation:
    """Leave-one-task-out accuracy of every signal on ``rows`` (see the module docstring); with ``fit_rows``
    (another study), each signal is fitted once on those and tested on every row of ``rows`` instead."""
    tasks = sorted({r.task for r in rows})
    signals = signals_for(rows)
    regimes = sorted({r.regime for r in rows}, key=_regime_key)
    results = []
    for sig in signals:
        preds = []
        if fit_rows is not None:
            train = [r for r in fit_rows if r.winner != "tie" and sig.available(r)]
            predictor = sig.fit(train) if train else None
            if predictor is not None:
                preds = [(r, *predictor(r)) for r in rows if sig.available(r)]
            tasks_loop: list[str] = []
        else:
            tasks_loop = tasks
        for task in tasks_loop:
            train = [r for r in rows if r.task != task and r.winner != "tie" and sig.available(r)]
            test = [r for r in rows if r.task == task and sig.available(r)]
            if not test:
                continue
            predictor = sig.fit(train) if train else None
            if predictor is None:
                continue
            preds += [(r, *predictor(r)) for r in test]
        overall = _acc(preds)
        by_regime = {g: _acc([p for p in preds if p[0].regime == g]) for g in regimes}
        costs = [sig.cost(r) for r, _, _ in preds]
        costs = [c for c in costs if math.isfinite(c)]
        results.append(
            SignalResult(sig, preds, overall, by_regime, float(np.median(costs)) if costs else math.nan)
        )
    scored = [r for r in rows if _scored(r)]
    vpt = sum(r.winner == "VPT" for r in scored)
    winner = "VPT" if vpt > len(scored) - vpt else "FT"
    base = accuracy(max(vpt, len(scored) - vpt), len(scored))
    base_by = {}
    for g in regimes:
        sub = [r for r in scored if r.regime == g]
        base_by[g] = accuracy(sum(r.winner == winner for r in sub), len(sub))
    return Evaluation(
        source, rows, results, base, winner, base_by, fitted_on="" if fit_rows is None else "other"
    )


def _acc(preds: list[tuple[Row, str, float | None]]) -> Accuracy:
    scored = [(r, w) for r, w, _ in preds if _scored(r)]
    return accuracy(sum(r.winner == w for r, w in scored), len(scored))


def _regime_key(regime: str) -> tuple:
    from vptlab.analysis.results import regime_order

    return regime_order(regime)


# --- presentation -------------------------------------------------------------------------------------------


def _secs(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.2f}" if x < 10 else f"{x:.0f}"


def evaluation_markdown(ev: Evaluation) -> str:
    regimes = list(ev.baseline_by_regime)
    tasks = len({r.task for r in ev.rows})
    how = (
        f"Accuracy of the advisor's signals fitted on {ev.fitted_on} and tested"
        if ev.fitted_on
        else "Leave-one-task-out accuracy of the advisor's signals"
    )
    lines = [
        f"{how} on {ev.source or 'the study'}: "
        f"{len(ev.rows)} FT-vs-VPT comparisons over {tasks} tasks, {ev.scored} with a clear gap "
        "(|gap| > std_FT + std_VPT; only those are scored). Accuracy k/n = % [95% Wilson interval]; "
        "seconds: median cost of the signal per comparison.",
        "",
        "| signal | held-out accuracy | " + " | ".join(regimes) + " | seconds |",
        "|---|---|" + "---|" * len(regimes) + "---|",
    ]
    for res in sorted(ev.results, key=lambda r: -(r.overall.rate if r.overall.n else -1)):
        cells = " | ".join(res.by_regime[g].text() if res.by_regime[g].n else "-" for g in regimes)
        mark = " (beats baseline)" if ev.beats_baseline(res) else ""
        lines.append(f"| {res.signal.label}{mark} | {res.overall.text()} | {cells} | {_secs(res.seconds)} |")
    cells = " | ".join(
        ev.baseline_by_regime[g].text() if ev.baseline_by_regime[g].n else "-" for g in regimes
    )
    lines.append(f"| majority baseline: always {ev.baseline_winner} | {ev.baseline.text()} | {cells} | 0 |")
    best = ev.best()
    lines.append("")
    if best is None:
        lines.append("No signal could be scored (no clear comparisons with the features it needs).")
    elif ev.beats_baseline(best):
        lines.append(
            f"Best: {best.signal.label}, {best.overall.k} of {best.overall.n} held-out comparisons right "
            f"(always {ev.baseline_winner}: {ev.baseline.k} of {ev.baseline.n})."
        )
    else:
        lines.append(
            f"Not enough evidence: no signal beat always {ev.baseline_winner} "
            f"({ev.baseline.k} of {ev.baseline.n}) on held-out tasks."
        )
    cal = [r for r in ev.results if r.signal.probabilistic and r.calibration]
    if cal:
        lines += [
            "",
            "Calibration of the signals that give P(VPT wins), held-out, clear comparisons "
            "(bin: comparisons, mean predicted P, observed VPT-win fraction); Brier score (lower is better):",
            "",
            "| signal | Brier | " + " | ".join(f"P {lo:.1f}-{hi:.1f}" for lo, hi in _bins()) + " |",
            "|---|---|" + "---|" * len(_bins()) + "",
        ]
        for res in cal:
            got = {b: (n, p, o) for b, n, p, o in res.calibration}
            cells = []
            for lo, hi in _bins():
                n, p, o = got.get(f"{lo:.1f}-{hi:.1f}", (0, 0, 0))
                cells.append(f"{n}: {p:.2f} / {o:.2f}" if n else "-")
            lines.append(f"| {res.signal.label} | {res.brier:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _bins() -> list[tuple[float, float]]:
    return list(zip(CALIBRATION_BINS[:-1], CALIBRATION_BINS[1:]))


def evaluation_dict(ev: Evaluation) -> dict:
    def acc(a: Accuracy) -> dict:
        return {"k": a.k, "n": a.n, "rate": a.rate, "ci": [a.low, a.high], "ci_method": CI_METHOD}

    return {
        "source": ev.source,
        "comparisons": len(ev.rows),
        "clear": ev.scored,
        "baseline": {"always": ev.baseline_winner, **acc(ev.baseline)},
        "signals": [
            {
                "name": r.signal.name,
                "label": r.signal.label,
                "accuracy": acc(r.overall),
                "by_regime": {g: acc(a) for g, a in r.by_regime.items()},
                "seconds": r.seconds,
                "beats_baseline": ev.beats_baseline(r),
                "calibration": r.calibration if r.signal.probabilistic else None,
            }
            for r in ev.results
        ],
    }


# --- rows from a study --------------------------------------------------------------------------------------

COLUMNS = ("task", "regime", "objective", "train_size", "winner", "clear", "gap", "fid")


def save_rows(rows: list[Row], path: str | Path) -> None:
    """The comparisons as CSV (one row each: features, outcome, seconds)."""
    epochs = sorted({e for r in rows for e in r.quick})
    cost_keys = ("features", "fid", *SCORES)
    header = [*COLUMNS, *SCORES, *(f"quick@{e}" for e in epochs), *(f"quick@{e}_seconds" for e in epochs)]
    header += [f"{k}_seconds" for k in cost_keys]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow(
                [r.task, r.regime, r.objective, r.train_size, r.winner, int(r.clear), r.gap, r.fid]
                + [r.scores.get(s, math.nan) for s in SCORES]
                + [r.quick.get(e, math.nan) for e in epochs]
                + [r.quick_seconds.get(e, math.nan) for e in epochs]
                + [r.seconds.get(k, math.nan) for k in cost_keys]
            )


def load_rows(path: str | Path) -> list[Row]:
    """Comparisons saved by :func:`save_rows`; a malformed file is a :class:`UserError` naming the line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    rows = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
        for line, rec in enumerate(reader, start=2):
            try:
                quick = {
                    int(k[6:]): float(v) for k, v in rec.items() if k.startswith("quick@") and "_" not in k
                }
                rows.append(
                    Row(
                        task=rec["task"],
                        regime=rec["regime"],
                        objective=rec["objective"],
                        train_size=int(rec["train_size"]),
                        winner=rec["winner"],
                        clear=rec["clear"] in ("1", "True", "true"),
                        gap=float(rec["gap"]),
                        fid=float(rec["fid"]),
                        scores={s: float(rec[s]) for s in SCORES if s in rec},
                        quick={e: v for e, v in quick.items() if math.isfinite(v)},
                        quick_seconds={
                            int(k[6:].split("_")[0]): float(v)
                            for k, v in rec.items()
                            if k.startswith("quick@") and k.endswith("_seconds") and v not in ("", "nan")
                        },
                        seconds={
                            k[: -len("_seconds")]: float(v)
                            for k, v in rec.items()
                            if k.endswith("_seconds") and not k.startswith("quick@")
                        },
                    )
                )
            except (ValueError, TypeError, KeyError) as err:
                raise UserError(f"{path}:{line}: malformed row ({err})") from err
            if rows[-1].winner not in ("VPT", "FT", "tie"):
                raise UserError(f"{path}:{line}: winner must be VPT, FT or tie, got {rows[-1].winner!r}")
    return rows


def prior_rows() -> list[Row]:
    """The bundled demo study's comparisons (vptlab-tiny features): the prior a new user starts from."""
    from importlib.resources import files

    return load_rows(Path(str(files("vptlab.resources") / PRIOR_FILE)))


CACHE = "advisor-comparisons.csv"


def signal_rows(
    where: str | Path, device: str = "cpu", extractor=None, pretrain=None
) -> tuple[list[Row], str]:
    """Comparisons with features from a study folder (computed once, kept as ``STUDY/advisor-comparisons-
    FEATURES.csv`` and recomputed when the study's comparisons change), a saved ``.csv``, or ``prior`` (the
    bundled demo).  ``extractor``: the features (default: the study backbone's); ``pretrain``: FID statistics
    of the pretraining data (default: the bundled backbone's upstream set)."""
    if str(where) == "prior":
        return prior_rows(), "the bundled demo study (prior)"
    path = Path(where)
    if path.is_file():
        return load_rows(path), str(path)
    rows = study_rows(path, features=False)
    if extractor is None:
        extractor = _study_extractor(path, device)
    cache = path / CACHE.replace(".csv", f"-{_safe_key(extractor.key)}.csv")
    cached = {(r.task, r.regime): r for r in load_rows(cache)} if cache.is_file() else {}
    todo = []
    for row in rows:  # features are kept per comparison: a study that grew only computes its new ones
        old = cached.get((row.task, row.regime))
        if old is not None and old.scores and math.isfinite(old.seconds.get("features", math.nan)):
            row.fid, row.scores = old.fid, old.scores
            row.seconds = {**old.seconds, **row.seconds}
        else:
            todo.append(row)
    if todo:
        results = _load(path)
        _add_features(
            todo, results, device, extractor, pretrain, known=rows, save=lambda: save_rows(rows, cache)
        )
    save_rows(rows, cache)
    return rows, str(path)


def _load(study: Path) -> list[dict]:
    from vptlab.analysis.advisor import load_study_results

    return load_study_results(study)


def _safe_key(key: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key)


def _study_extractor(study: Path, device: str):
    """The study backbone's pre-logit features (its first final run's backbone and checkpoint)."""
    from vptlab.analysis.advisor import load_study_results
    from vptlab.analysis.fid_features import BackboneFeatures

    for r in load_study_results(study):
        cfg = r.get("config") or {}
        if cfg.get("stage") == "final":
            return BackboneFeatures(cfg.get("backbone") or "vptlab-tiny", cfg.get("checkpoint"), device)
    return BackboneFeatures("vptlab-tiny", None, device)


def study_rows(
    study: str | Path,
    *,
    features: bool = True,
    device: str = "cpu",
    quick_fractions: tuple[float, ...] = QUICK_FRACTIONS,
    extractor=None,
    pretrain=None,
) -> list[Row]:
    """Every FT-vs-VPT comparison of a study folder, with its features (computed here, timed)."""
    from vptlab.analysis.advisor import load_study_results
    from vptlab.analysis.results import compare, final_cells, regime_order

    results = load_study_results(study)
    cells = final_cells(results)
    regimes = sorted({c.regime for c in cells}, key=regime_order)
    comps = [c for g in regimes for c in compare(cells, g)]
    if not comps:
        raise UserError(f"{study}: no task has final runs of both full and a VPT method to compare")
    rows = []
    for comp in comps:
        sizes = [s for s in (comp.ft.train_size, comp.vpt.train_size) if s]
        rows.append(
            Row(
                comp.task,
                comp.regime,
                comp.objective,
                max(sizes) if sizes else 1000,
                comp.winner,
                bool(comp.clear),
                float(comp.gap),
            )
        )
    _add_quick(rows, results, comps, quick_fractions)
    if features:
        _add_features(rows, results, device, extractor, pretrain)
    return rows


def _add_quick(rows, results, comps, fractions) -> None:
    """The head-to-head at each budget, from the tune runs' per-epoch validation top-1."""
    tune: dict[tuple, list[dict]] = {}
    for row in results:
        cfg = row.get("config") or {}
        if cfg.get("stage") == "tune" and row.get("status") == "ok":
            key = (cfg.get("method"), cfg.get("task"), cfg.get("regime", "standard"))
            tune.setdefault(key, []).append(row)
    for row, comp in zip(rows, comps):
        sides = []
        for method in (comp.ft.method, comp.vpt.method):
            runs = tune.get((method, comp.task, comp.regime), [])
            curves = [_epoch_lines(Path(r["run_dir"])) for r in runs]
            sides.append([c for c in curves if c])
        if not all(sides):
            continue
        epochs = min(len(c) for side in sides for c in side)
        total = int((runs[0].get("config") or {}).get("epochs", epochs))
        for frac in fractions:
            e = max(1, round(frac * total))
            if e > epochs or e >= total:
                continue
            best = [max(float(c[e - 1].get("val_top1", -1)) for c in side) for side in sides]
            row.quick[e] = best[1] - best[0]
            row.quick_seconds[e] = float(
                sum(c[e - 1].get("seconds", math.nan) for side in sides for c in side)
            )


def _epoch_lines(run_dir: Path) -> list[dict]:
    """A run's ``metrics.jsonl`` lines (one per epoch, cumulative seconds); unreadable lines end the curve."""
    import json

    out = []
    try:
        text = (run_dir / "metrics.jsonl").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            break
        if isinstance(rec, dict) and "val_top1" in rec:
            out.append(rec)
    return out


def _add_features(rows, results, device, extractor, pretrain, known=(), save=None) -> None:
    """FID (per task, final training set) and the transferability scores (per task and regime), timed."""
    from vptlab._progress import progress
    from vptlab.analysis.fid import fid_from_stats, stats_from_features
    from vptlab.analysis.fid_features import BackboneFeatures
    from vptlab.analysis.task_fid import pretraining_stats
    from vptlab.analysis.transfer import all_scores
    from vptlab.data import load_task

    runs = {}
    for r in results:
        cfg = r.get("config") or {}
        if cfg.get("stage") == "final":
            runs.setdefault((cfg.get("task"), cfg.get("regime", "standard")), cfg)
    any_cfg = next(iter(runs.values()))
    backbone = any_cfg.get("backbone", "vptlab-tiny")
    if extractor is None:
        extractor = BackboneFeatures(backbone, any_cfg.get("checkpoint"), device)
    backbone = extractor.name if isinstance(extractor, BackboneFeatures) else backbone
    if pretrain is None:
        try:
            pretrain = pretraining_stats(backbone, extractor)
        except UserError:
            pretrain = None  # no pretraining statistics for this backbone: no FID, the scores still work
    size = extractor.image_size
    task_fid = {
        r.task: (r.fid, r.seconds["fid"]) for r in known if math.isfinite(r.fid) and "fid" in r.seconds
    }
    standard: dict[str, np.ndarray] = {}
    for row in progress(rows, desc="advisor features", unit="comparison"):
        cfg = runs.get((row.task, row.regime), any_cfg)
        split_seed = cfg.get("split_seed", 0)
        split_seed = split_seed if isinstance(split_seed, int) else int(cfg.get("seed", 0))
        start = time.perf_counter()
        data = load_task(
            cfg.get("data", "synthetic"), row.task, stage="final", regime=row.regime, split_seed=split_seed,
            image_size=size,
        )  # fmt: skip
        feats = extractor(data.train.images)
        row.seconds["features"] = time.perf_counter() - start
        if row.regime == "standard":
            standard[row.task] = (feats, row.seconds["features"])
        row.scores, secs = all_scores(feats, data.train.labels)
        row.seconds.update(secs)
        if pretrain is not None and row.task not in task_fid:
            start = time.perf_counter()
            if row.task in standard:  # the standard regime's training set is the FID's: reuse its features
                feats, spent = standard[row.task]
            else:
                std = load_task(cfg.get("data", "synthetic"), row.task, stage="final", image_size=size)
                feats, spent = extractor(std.train.images), 0.0
            fid = fid_from_stats(stats_from_features(feats), pretrain)
            task_fid[row.task] = (fid, time.perf_counter() - start + spent)
        if row.task in task_fid:
            row.fid, row.seconds["fid"] = task_fid[row.task]
        if save is not None:
            save()
