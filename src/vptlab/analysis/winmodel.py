"""A study's own answer to "does VPT beat FT here?": logistic regression on FID, objective and data size.

One sample per (task, regime) the study compared (FT and VPT final runs, the task's FID known): the outcome is
whether VPT's mean test top-1 beat FT's (ties left out).  Features: FID, objective (structured = 1) and log10 of
the training-set size; each is standardised, and one that did not vary in the study is dropped (and reported as
constant).  The fit is scikit-learn's L2-regularised logistic regression (strength ``L2``, i.e. ``C = 1/L2``;
lbfgs leaves the intercept unpenalised): small studies separate perfectly and an unregularised fit would run off
to infinity.  The model reports where a query
lies outside what it was fitted on, so nobody extrapolates from it silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vptlab.analysis.results import Comparison, compare, final_cells, regime_order

SIZE_MARGIN = 2.0
MIN_SAMPLES = 4
L2 = 1.0
FEATURES = ("FID", "structured objective", "log10 train size")


@dataclass(frozen=True)
class Sample:
    """One FT-vs-VPT comparison: the task's FID, objective and train size, and whether VPT won."""

    task: str
    regime: str
    fid: float
    objective: str
    train_size: int
    vpt_wins: bool


@dataclass(frozen=True)
class StudyModel:
    """P(VPT beats FT) = sigmoid(b + w . z), z the standardised features that varied in the study."""

    used: tuple[str, ...]
    intercept: float
    weights: tuple[float, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    samples: tuple[Sample, ...]
    constant: dict[str, float] = field(default_factory=dict)

    @property
    def n_tasks(self) -> int:
        return len({s.task for s in self.samples})

    def predict(self, fid: float, objective: str, train_size: int) -> float:
        x = dict(zip(FEATURES, _features(fid, objective, train_size)))
        z = [(x[name] - c) / s for name, c, s in zip(self.used, self.center, self.scale)]
        return float(_sigmoid(self.intercept + float(np.dot(self.weights, z))))

    def extrapolations(self, fid: float, objective: str, train_size: int) -> list[str]:
        """Where the query lies outside what the model was fitted on (empty: inside)."""
        out = []
        fids = [s.fid for s in self.samples]
        if not min(fids) <= fid <= max(fids):
            out.append(f"FID {fid:.1f} outside the study's range [{min(fids):.1f}, {max(fids):.1f}]")
        seen = sorted({s.objective for s in self.samples})
        if objective not in seen:
            out.append(f"objective {objective} not in the study (it has {', '.join(seen)})")
        sizes = [s.train_size for s in self.samples]
        if not min(sizes) / SIZE_MARGIN <= train_size <= max(sizes) * SIZE_MARGIN:
            out.append(
                f"{train_size} training images not within a factor {SIZE_MARGIN:g} of the study's "
                f"[{min(sizes)}, {max(sizes)}]"
            )
        return out

    def coefficients(self) -> list[tuple[str, float]]:
        """(name, weight per standard deviation of the feature), intercept first."""
        return [
            ("intercept", self.intercept),
            *((f"{n} (per sd)", w) for n, w in zip(self.used, self.weights)),
        ]


def _features(fid: float, objective: str, train_size: int) -> tuple[float, float, float]:
    return (float(fid), 1.0 if objective == "structured" else 0.0, math.log10(max(train_size, 1)))


def _sigmoid(t: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-np.clip(t, -500, 500)))


def fit_study_model(samples: list[Sample], l2: float = L2) -> tuple[StudyModel | None, str]:
    """Fit the model, or return None with the reason it cannot be fitted."""
    if len(samples) < MIN_SAMPLES:
        return None, f"only {len(samples)} FT-vs-VPT comparisons with an FID (need {MIN_SAMPLES})"
    y = np.array([s.vpt_wins for s in samples], dtype=float)
    if y.min() == y.max():
        who = "VPT" if y[0] else "FT"
        return None, f"{who} won all {len(samples)} comparisons: nothing to separate"
    x = np.array([_features(s.fid, s.objective, s.train_size) for s in samples])
    keep = [i for i in range(x.shape[1]) if np.ptp(x[:, i]) > 0]
    center, scale = x[:, keep].mean(axis=0), x[:, keep].std(axis=0)
    z = (x[:, keep] - center) / scale
    w = _fit_logistic(z, y, l2)
    constant = {FEATURES[i]: float(x[0, i]) for i in range(x.shape[1]) if i not in keep}
    model = StudyModel(
        tuple(FEATURES[i] for i in keep),
        float(w[0]),
        tuple(map(float, w[1:])),
        tuple(map(float, center)),
        tuple(map(float, scale)),
        tuple(samples),
        constant,
    )
    return model, ""


def _fit_logistic(z: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Minimise the logistic loss + l2/2 |w|^2 (intercept not penalised): [intercept, *weights]."""
    from sklearn.linear_model import LogisticRegression

    if z.shape[1] == 0:  # nothing varied: the intercept alone, the log-odds of the observed rate
        p = float(np.mean(y))
        return np.array([math.log(p / (1 - p))])
    model = LogisticRegression(C=1.0 / l2, tol=1e-10, max_iter=1000).fit(z, y.astype(int))
    return np.concatenate([model.intercept_, model.coef_[0]])


def study_samples(results: list[dict], fids: dict[str, float]) -> list[Sample]:
    """One sample per (task, regime) where the study has FT and VPT finals and the task has an FID."""
    cells = final_cells(results)
    regimes = sorted({c.regime for c in cells}, key=regime_order)
    samples = []
    for regime in regimes:
        for comp in compare(cells, regime):
            if comp.task in fids and comp.winner != "tie":
                samples.append(
                    Sample(
                        comp.task, regime, fids[comp.task], comp.objective, _size(comp), comp.winner == "VPT"
                    )
                )
    return samples


def _size(comp: Comparison) -> int:
    """Training images of the compared runs (from the run records; VTAB-1k's 1,000 if not recorded)."""
    sizes = [s for s in (comp.ft.train_size, comp.vpt.train_size) if s]
    return max(sizes) if sizes else 1000
