"""Transferability scores: how well a frozen backbone's features already fit a task, in seconds per task.

Each score takes features ``f`` (``(n, d)``, the backbone's pre-logit CLS features of the task's training images)
and integer labels ``y``.  Higher means the frozen features suit the task better.  Implemented from the papers:

- :func:`logme` - LogME (You et al., ICML 2021): for each class, the log marginal evidence of a Bayesian linear
  model ``y_k = f w + e`` with prior ``w ~ N(0, I/alpha)`` and noise ``e ~ N(0, I/beta)``, maximised over
  ``alpha, beta`` by the paper's fixed-point iteration on the SVD of ``f`` (its Algorithm 1), divided by ``n`` and
  averaged over classes (alpha and beta kept within ``BOUNDS``).
- :func:`h_score` - H-score (Bao et al., ICIP 2019): ``tr(cov(f)^-1 cov(E[f | y]))``, the between-class share of
  the feature covariance (the inverse is a pseudo-inverse: few-shot tasks have fewer images than dimensions).
- :func:`knn_accuracy` - leave-one-out k-nearest-neighbour accuracy (%) on the standardised features.
- :func:`linear_probe_accuracy` - cross-validated accuracy (%) of scikit-learn's L2 logistic regression.

LEEP and NCE need the source model's classifier over its pretraining labels; vptlab's backbones are used without
a source head, so they are not offered.
"""

from __future__ import annotations

import math
import time

import numpy as np

SCORES = ("logme", "h_score", "knn", "linear_probe")
SCORE_LABELS = {
    "logme": "LogME",
    "h_score": "H-score",
    "knn": "kNN accuracy",
    "linear_probe": "linear-probe accuracy",
}
KNN_K = 5
BOUNDS = (1e-10, 1e10)  # LogME's alpha and beta: few images in many dimensions can fit a target exactly, and
# then the evidence grows without bound as the noise precision beta does
PROBE_FOLDS = 3


def _check(f: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y)
    if f.ndim != 2 or len(f) != len(y) or len(f) < 2:
        raise ValueError(f"need (n, d) features and n labels with n >= 2, got {f.shape} and {y.shape}")
    return f, y


def logme_evidence(f: np.ndarray, t: np.ndarray, alpha: float, beta: float) -> float:
    """Log evidence ``log p(t | f, alpha, beta)`` of one target column, by the paper's closed form (Eq. 2)."""
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ t)
    residual = float(np.sum((f @ m - t) ** 2))
    _, logdet = np.linalg.slogdet(a)
    return float(
        n / 2 * math.log(beta)
        + d / 2 * math.log(alpha)
        - n / 2 * math.log(2 * math.pi)
        - beta / 2 * residual
        - alpha / 2 * float(m @ m)
        - logdet / 2
    )


def _logme_one(u: np.ndarray, s2: np.ndarray, n: int, d: int, t: np.ndarray, iters: int = 100) -> float:
    """Maximised evidence / n for one target, by the fixed point on the SVD (``u`` left vectors, ``s2`` sigma^2)."""
    z = u.T @ t  # the target in the basis of f's left singular vectors
    z2 = z**2
    t_out = max(float(t @ t - z2.sum()), 0.0)  # the part of t outside f's column space
    alpha, beta = 1.0, 1.0
    for _ in range(iters):
        gamma = float(np.sum(beta * s2 / (alpha + beta * s2)))
        m2 = float(np.sum(beta**2 * s2 * z2 / (alpha + beta * s2) ** 2))  # |m|^2
        res2 = float(np.sum((alpha / (alpha + beta * s2)) ** 2 * z2)) + t_out  # |f m - t|^2
        new_alpha = min(max(gamma / max(m2, 1e-300), BOUNDS[0]), BOUNDS[1])
        new_beta = min(max((n - gamma) / max(res2, 1e-300), BOUNDS[0]), BOUNDS[1])
        done = abs(new_alpha - alpha) / alpha < 1e-6 and abs(new_beta - beta) / beta < 1e-6
        alpha, beta = new_alpha, new_beta
        if done:
            break
    m2 = float(np.sum(beta**2 * s2 * z2 / (alpha + beta * s2) ** 2))
    res2 = float(np.sum((alpha / (alpha + beta * s2)) ** 2 * z2)) + t_out
    # log|alpha I_d + beta f^T f|: d - r directions have eigenvalue alpha
    logdet = float(np.sum(np.log(alpha + beta * s2))) + (d - len(s2)) * math.log(alpha)
    evidence = (
        n / 2 * math.log(beta)
        + d / 2 * math.log(alpha)
        - n / 2 * math.log(2 * math.pi)
        - beta / 2 * res2
        - alpha / 2 * m2
        - logdet / 2
    )
    return evidence / n


def logme(f: np.ndarray, y: np.ndarray) -> float:
    """LogME of features ``f`` for labels ``y``: the mean over classes of the maximised evidence per sample."""
    f, y = _check(f, y)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    keep = s > s.max() * 1e-10 if s.size else s > 0
    u, s2 = u[:, keep], s[keep] ** 2
    classes = np.unique(y)
    return float(np.mean([_logme_one(u, s2, n, d, (y == c).astype(np.float64)) for c in classes]))


def h_score(f: np.ndarray, y: np.ndarray) -> float:
    """H-score: ``tr(pinv(cov f) @ cov(E[f | y]))`` with covariances over the samples (ddof 0)."""
    f, y = _check(f, y)
    f = f - f.mean(axis=0)
    cov_f = f.T @ f / len(f)
    g = np.zeros_like(f)
    for c in np.unique(y):
        mask = y == c
        g[mask] = f[mask].mean(axis=0)
    cov_g = g.T @ g / len(f)
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-10, hermitian=True) @ cov_g))


def _standardise(f: np.ndarray) -> np.ndarray:
    sd = f.std(axis=0)
    return (f - f.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def knn_accuracy(f: np.ndarray, y: np.ndarray, k: int = KNN_K) -> float:
    """Leave-one-out accuracy (%) of a ``k``-nearest-neighbour vote (Euclidean, standardised features)."""
    from sklearn.neighbors import KNeighborsClassifier

    f, y = _check(f, y)
    z = _standardise(f)
    k = min(k, len(z) - 1)
    knn = KNeighborsClassifier(n_neighbors=k + 1).fit(z, y)
    idx = knn.kneighbors(z, return_distance=False)
    correct = 0
    for i, row in enumerate(idx):
        others = [j for j in row if j != i][:k]  # leave the image itself out
        labels, counts = np.unique(y[others], return_counts=True)
        correct += int(labels[np.argmax(counts)] == y[i])  # ties: the smallest label
    return 100.0 * correct / len(y)


def linear_probe_accuracy(f: np.ndarray, y: np.ndarray, folds: int = PROBE_FOLDS) -> float:
    """Cross-validated accuracy (%) of an L2 logistic regression (C = 1) on the standardised features.

    Stratified ``folds``-fold; with fewer images per class than folds (few-shot), leave-one-out."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneOut, StratifiedKFold, cross_val_score

    f, y = _check(f, y)
    z = _standardise(f)
    if len(np.unique(y)) < 2:
        return 100.0
    smallest = int(np.bincount(np.unique(y, return_inverse=True)[1]).min())
    cv = StratifiedKFold(folds, shuffle=True, random_state=0) if smallest >= folds else LeaveOneOut()
    model = LogisticRegression(C=1.0, max_iter=500)
    return 100.0 * float(np.mean(cross_val_score(model, z, y, cv=cv)))


SCORE_FUNCTIONS = {
    "logme": logme,
    "h_score": h_score,
    "knn": knn_accuracy,
    "linear_probe": linear_probe_accuracy,
}


def all_scores(f: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    """Every score of (features, labels), and the seconds each took (features not included)."""
    values, seconds = {}, {}
    for name, fn in SCORE_FUNCTIONS.items():
        start = time.perf_counter()
        values[name] = float(fn(f, y))
        seconds[name] = time.perf_counter() - start
    return values, seconds
