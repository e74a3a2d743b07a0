"""Transferability scores against values computed independently: brute-force evidence, closed forms, counts."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize
from scipy.stats import multivariate_normal

from vptlab.analysis.transfer import all_scores, h_score, knn_accuracy, linear_probe_accuracy, logme


def _tiny(seed: int = 0, n: int = 12, d: int = 3, classes: int = 2):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    f = rng.normal(size=(n, d)) + 1.5 * y[:, None] * np.array([1.0, -0.5, 0.0][:d])
    return f, y


def _brute_force_logme(f: np.ndarray, y: np.ndarray) -> float:
    """max over (alpha, beta) of log N(t; 0, f f^T / alpha + I / beta), per sample, class mean: a log grid, then
    Nelder-Mead from the grid's best point."""
    n = len(f)
    grid = np.linspace(math.log(1e-3), math.log(1e3), 61)

    def evidence(t, la, lb):
        return multivariate_normal(np.zeros(n), f @ f.T / math.exp(la) + np.eye(n) / math.exp(lb)).logpdf(t)

    out = []
    for c in np.unique(y):
        t = (y == c).astype(float)
        start = max(((a, b) for a in grid for b in grid), key=lambda p, t=t: evidence(t, *p))
        res = minimize(
            lambda p, t=t: -evidence(t, *p),
            start,
            method="Nelder-Mead",
            options={"xatol": 1e-8, "fatol": 1e-12},
        )
        out.append(-res.fun / n)
    return float(np.mean(out))


def test_logme_is_the_maximised_evidence():
    f, y = _tiny()
    ours = logme(f, y)
    brute = _brute_force_logme(f, y)
    # the fixed point reaches the maximum a direct search over (alpha, beta) finds
    assert math.isclose(ours, brute, abs_tol=1e-6)


def test_logme_ranks_informative_features_above_noise():
    rng = np.random.default_rng(1)
    y = np.arange(60) % 3
    good = np.eye(3)[y] * 3 + rng.normal(size=(60, 3)) * 0.3
    noise = rng.normal(size=(60, 3))
    assert logme(good, y) > logme(noise, y)


def test_h_score_matches_its_closed_form():
    f, y = _tiny(classes=3, n=15)
    # closed form, written out: class-mean matrix, covariances with numpy.cov (ddof 0)
    g = np.stack([f[y == y_i].mean(axis=0) for y_i in y])
    expected = np.trace(np.linalg.inv(np.cov(f.T, ddof=0)) @ np.cov(g.T, ddof=0))
    assert math.isclose(h_score(f, y), expected, rel_tol=1e-9)
    # 1-d features equal to the label's +-1: all variance is between classes, H = 1
    y2 = np.array([0, 1] * 5)
    assert math.isclose(h_score((2.0 * y2 - 1)[:, None], y2), 1.0, rel_tol=1e-12)


def test_knn_accuracy_matches_a_brute_force_count():
    f, y = _tiny(seed=3, n=20)
    z = (f - f.mean(0)) / f.std(0)
    right = 0
    for i in range(len(z)):
        d = np.linalg.norm(z - z[i], axis=1)
        d[i] = np.inf
        nearest = np.argsort(d, kind="stable")[:3]
        right += int(np.bincount(y[nearest], minlength=2).argmax() == y[i])
    assert knn_accuracy(f, y, k=3) == 100.0 * right / len(y)


def test_linear_probe_separates_what_is_separable_and_not_noise():
    rng = np.random.default_rng(4)
    y = np.arange(60) % 2
    f = np.column_stack([y * 4.0 + rng.normal(size=60) * 0.1, rng.normal(size=60)])
    assert linear_probe_accuracy(f, y) == 100.0
    assert linear_probe_accuracy(rng.normal(size=(60, 2)), y) < 80.0
    # few-shot: one image per class falls back to leave-one-out without failing
    assert 0.0 <= linear_probe_accuracy(rng.normal(size=(4, 2)), np.array([0, 1, 2, 3])) <= 100.0


def test_all_scores_times_each():
    f, y = _tiny()
    values, seconds = all_scores(f, y)
    assert set(values) == set(seconds) == {"logme", "h_score", "knn", "linear_probe"}
    assert all(s >= 0 for s in seconds.values())
