"""The paper's split regimes, for any source: standard VTAB-1k, k-shot, and data-size; plus a stratified partition.

Every draw is seeded (``split_seed``) and works on labels and indices only, so the same functions serve VTAB-1k
folders, a user's folders and the synthetic tasks.  A source hands its splits over as :class:`Pools` (loaded
lazily: a regime touches only what it needs, which matters for a 73,728-image test set or a 20,000-image pool).

==========  ===================================================  =================================
regime      tune stage (train / val)                             final stage (train; val is None)
==========  ===================================================  =================================
standard    train800 / val200                                    train800val200
kshot:K     K per class from train800 / K per class from val200  the union of those two draws
fewshot:K   K per class from train800 / all of val200 (NOAH)     the same K per class only
size:N      N / N//4 drawn (disjoint) from the size pool         the union of those two draws
==========  ===================================================  =================================

k-shot falls back to a class's other non-test images (pool.txt, then the other split) when train800 or val200
holds fewer than K of it; ``record["kshot"]["fallback_draws"]`` counts such draws.

The test split is always the task's own test set, untouched.  For VTAB-1k the size pool is train800val200 plus
the optional ``pool.txt``; for a user's folder it is everything outside the held-out test part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vptlab.data.base import ImageSet, TaskInfo
from vptlab.errors import UserError

STAGES = ("tune", "final")
# Where a pool image comes from: the tuning train split, the tuning val split, or an extra pool (pool.txt).
TRAIN, VAL, EXTRA = 0, 1, 2
_TRAIN_FIRST = np.array([0, 2, 1])  # preference rank by origin: TRAIN, then EXTRA, then VAL
_VAL_FIRST = np.array([2, 0, 1])  # VAL, then EXTRA, then TRAIN
REGIME_FORMS = "'standard', 'kshot:K' (K >= 1), 'fewshot:K' (K >= 1) or 'size:N' (N >= 4)"


@dataclass(frozen=True)
class Regime:
    """A parsed split regime: ``kind`` is standard, kshot or size; ``value`` is K or N."""

    kind: str
    value: int = 0

    def __post_init__(self) -> None:
        if self.kind == "standard" and self.value == 0:
            return
        if self.kind in ("kshot", "fewshot") and self.value >= 1:
            return
        if self.kind == "size" and self.value >= 4:
            return
        raise UserError(f"regime must be {REGIME_FORMS}, got {str(self)!r}")

    def __str__(self) -> str:
        return self.kind if self.kind == "standard" else f"{self.kind}:{self.value}"


def parse_regime(text: str) -> Regime:
    """``"standard"``, ``"kshot:K"`` or ``"size:N"`` -> :class:`Regime` (a :class:`UserError` otherwise)."""
    kind, _, value = str(text).strip().partition(":")
    if kind == "standard" and not value:
        return Regime("standard")
    if kind in ("kshot", "fewshot", "size") and value.strip().isdigit():
        return Regime(kind, int(value))
    raise UserError(f"regime must be {REGIME_FORMS}, got {text!r}")


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise UserError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    return stage


def _rng(seed: int, stream: int) -> np.random.Generator:
    """Independent, reproducible streams per purpose (train draw, val draw, ...) from one seed."""
    if int(seed) < 0:
        raise UserError(f"split seeds must be >= 0, got {seed}")
    return np.random.default_rng([int(seed), stream])


def kshot_indices(
    labels: np.ndarray, origin: np.ndarray, k: int, seed: int, *, num_classes: int, task: str, pool: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """``k`` train and ``k`` val indices per class (every class), disjoint, drawn at random from a pool.

    ``origin`` marks each pool image as TRAIN (train800), VAL (val200) or EXTRA (pool.txt).  Train draws take
    TRAIN images first, val draws VAL images first: where every class has ``k`` of each, this is exactly "k per
    class from the train pool and k per class from the val pool".  A class short there takes its other
    non-test images (EXTRA, then the other split) instead of failing: val200's 200 random images miss some
    classes of cifar100 or sun397 entirely.  Returns the sorted train and val indices and how many fell back.
    """
    rng = _rng(seed, 0)
    counts = np.bincount(labels, minlength=num_classes)
    train, val, fallback = [], [], 0
    for c in range(num_classes):
        if counts[c] < 2 * k:
            raise UserError(
                f"kshot:{k} on {task}: class {c} has {counts[c]} image(s) in the pool ({pool}, {len(labels)} "
                f"images), needs {2 * k} (K for train and K for val); a larger pool (VTAB-1k: pool.txt) helps"
            )
        members = rng.permutation(np.flatnonzero(labels == c))
        t = members[np.argsort(_TRAIN_FIRST[origin[members]], kind="stable")[:k]]
        rest = members[~np.isin(members, t)]
        v = rest[np.argsort(_VAL_FIRST[origin[rest]], kind="stable")[:k]]
        fallback += int((origin[t] != TRAIN).sum() + (origin[v] != VAL).sum())
        train.append(t)
        val.append(v)
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val)), fallback


def largest_size(pool_size: int) -> int:
    """The largest N with N + N//4 <= pool_size (the size regime draws N train and N//4 val images)."""
    n = (4 * pool_size) // 5
    while n + 1 + (n + 1) // 4 <= pool_size:
        n += 1
    while n > 0 and n + n // 4 > pool_size:
        n -= 1
    return n


def size_indices(pool_size: int, n: int, seed: int, *, pool: str, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint random ``n`` train and ``n // 4`` val indices into a pool of ``pool_size`` images."""
    need = n + n // 4
    if need > pool_size:
        raise UserError(
            f"size:{n} on {task}: the pool ({pool}) holds {pool_size} images but N + N/4 = {need} are needed; "
            f"the largest possible N is {largest_size(pool_size)}"
        )
    order = _rng(seed, 2).permutation(pool_size)
    return np.sort(order[:n]), np.sort(order[n:need])


def stratified_partition(
    labels: np.ndarray, seed: int, *, test_fraction: float = 0.2, val_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split indices per class into train / val / test: ``test_fraction`` held out, then ``val_fraction`` of the
    rest for val (0.2 and 0.2 give test 20% and train:val 4:1).  A class of 3 or more images gets at least one
    image in each part; smaller classes go to train.
    """
    for name, f in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0.0 < f < 1.0:
            raise UserError(f"{name} must be between 0 and 1 (exclusive), got {f}")
    rng = _rng(seed, 3)
    parts: tuple[list, list, list] = ([], [], [])
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_test, n_val = _part_sizes(len(members), test_fraction, val_fraction)
        parts[2].append(members[:n_test])
        parts[1].append(members[n_test : n_test + n_val])
        parts[0].append(members[n_test + n_val :])
    train, val, test = (np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts)
    return train, val, test


def _part_sizes(n: int, test_fraction: float, val_fraction: float) -> tuple[int, int]:
    if n < 3:
        return 0, 0
    n_test = min(n - 2, max(1, int(n * test_fraction + 0.5)))
    n_val = min(n - n_test - 1, max(1, int((n - n_test) * val_fraction + 0.5)))
    return n_test, n_val


# --- applying a regime to a source's splits ----------------------------------------------------------------

Take = Callable[[ImageSet, np.ndarray, str], ImageSet]


def _subset(imageset: ImageSet, indices: np.ndarray, description: str) -> ImageSet:
    return imageset.subset(indices, description)


def origins(members: Sequence[str], train: Iterable[str], val: Iterable[str]) -> np.ndarray:
    """TRAIN, VAL or EXTRA for each member, by membership of the train and val lists."""
    train_set, val_set = set(train), set(val)
    return np.array([TRAIN if m in train_set else VAL if m in val_set else EXTRA for m in members], np.int64)


@dataclass(frozen=True)
class Pools:
    """A source's splits as the regimes see them, each loaded only when called.

    ``train``/``val`` are the tuning splits (VTAB-1k: train800/val200), ``trainval`` the final-stage training
    split (train800val200), ``pool`` the larger pool of the size regime (trainval plus any extra images, named
    ``pool_name`` in messages; ``has_extra`` when it holds more than trainval).  ``*_origin`` give each image's
    origin (TRAIN, VAL, EXTRA), row for row, for the k-shot draw.
    """

    train: Callable[[], ImageSet]
    val: Callable[[], ImageSet]
    trainval: Callable[[], ImageSet]
    test: Callable[[], ImageSet]
    trainval_origin: Callable[[], np.ndarray]
    pool: Callable[[], ImageSet]
    pool_origin: Callable[[], np.ndarray]
    pool_name: str = "pool"
    has_extra: bool = False
    names: dict[str, str] = field(default_factory=lambda: {"train": "train800", "val": "val200"})


@dataclass
class Selection:
    """The three sets a run consumes and what the regime adds to the run's data record."""

    train: ImageSet
    val: ImageSet | None
    test: ImageSet
    record: dict[str, Any]


def select(
    regime: str | Regime, stage: str, pools: Pools, info: TaskInfo, split_seed: int, take: Take = _subset
) -> Selection:
    """Apply ``regime`` at ``stage`` to a source's ``pools``; ``take`` makes subsets (the cache's, for big ones)."""
    regime = regime if isinstance(regime, Regime) else parse_regime(regime)
    check_stage(stage)
    if regime.kind == "standard":
        train, val, extra = _standard(stage, pools)
    elif regime.kind == "kshot":
        train, val, extra = _kshot(regime.value, stage, pools, info, split_seed, take)
    elif regime.kind == "fewshot":
        train, val, extra = _fewshot(regime.value, stage, pools, info, split_seed, take)
    else:
        train, val, extra = _size(regime.value, stage, pools, info, split_seed, take)
    return Selection(train, val, pools.test(), {"regime": str(regime), **extra})


def _standard(stage: str, pools: Pools) -> tuple[ImageSet, ImageSet | None, dict]:
    if stage == "final":
        return pools.trainval(), None, {}
    return pools.train(), pools.val(), {}


def _kshot(k: int, stage: str, pools: Pools, info: TaskInfo, seed: int, take: Take):
    """K per class for train and for val from train+val, or from the larger pool if a class is short there."""
    base, origin, name = (
        pools.trainval(),
        pools.trainval_origin(),
        f"{pools.names['train']} + {pools.names['val']}",
    )
    if pools.has_extra and np.bincount(base.labels, minlength=info.num_classes).min() < 2 * k:
        base, origin, name = pools.pool(), pools.pool_origin(), pools.pool_name
    tr_idx, va_idx, fallback = kshot_indices(
        base.labels, origin, k, seed, num_classes=info.num_classes, task=info.name, pool=name
    )
    extra = {"kshot": {"k": k, "pool": name, "pool_size": len(base), "fallback_draws": fallback}}
    if stage == "final":
        both = np.sort(np.concatenate([tr_idx, va_idx]))
        return take(base, both, f"kshot:{k} train+val"), None, extra
    return take(base, tr_idx, f"kshot:{k} train"), take(base, va_idx, f"kshot:{k} val"), extra


def fewshot_indices(
    labels: np.ndarray, k: int, seed: int, *, num_classes: int, task: str, pool: str
) -> np.ndarray:
    """``k`` random indices per class (every class), sorted: NOAH's few-shot training set drawn from a pool."""
    rng = _rng(seed, 4)
    chosen = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < k:
            raise UserError(
                f"fewshot:{k} on {task}: class {c} has {len(members)} image(s) in {pool} ({len(labels)} images), "
                f"needs {k}"
            )
        chosen.append(rng.permutation(members)[:k])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def _fewshot(k: int, stage: str, pools: Pools, info: TaskInfo, seed: int, take: Take):
    """NOAH's protocol on any source: K per class from the train split, the whole val split for tuning, and the
    final stage on the same K per class alone (never the val images)."""
    base, name = pools.train(), pools.names["train"]
    idx = fewshot_indices(base.labels, k, seed, num_classes=info.num_classes, task=info.name, pool=name)
    extra = {"fewshot": {"k": k, "protocol": "noah", "pool": name, "pool_size": len(base)}}
    train = take(base, idx, f"fewshot:{k} train")
    return train, (None if stage == "final" else pools.val()), extra


def _size(n: int, stage: str, pools: Pools, info: TaskInfo, seed: int, take: Take):
    pool = pools.pool()
    tr_idx, va_idx = size_indices(len(pool), n, seed, pool=pools.pool_name, task=info.name)
    extra = {"size": {"n": n, "val_n": len(va_idx), "pool": pools.pool_name, "pool_size": len(pool)}}
    if stage == "final":
        both = np.sort(np.concatenate([tr_idx, va_idx]))
        return take(pool, both, f"size:{n} train+val"), None, extra
    return take(pool, tr_idx, f"size:{n} train"), take(pool, va_idx, f"size:{n} val"), extra
