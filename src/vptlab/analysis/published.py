"""Published VTAB-1k numbers to set a study's results against, read from the packaged files and always labelled.

Two references, in order:

1. **the seed paper** (Han et al., ICLR 2024, Tables 1-4; ``vtab1k_han2024_published.csv``): FT, VPT-deep, Mixed and
   FT-then-PT in the standard regime, FT and VPT-deep one-shot (``kshot:1``); 5 seeds, aggregated with
   ``np.std`` (ddof 0).  The primary yardstick: vptlab reruns this study.  Two of its cells could not be read
   with certainty from the paper; they are kept, flagged, and shown with a ``?``.
2. **the VPT paper** (Jia et al., ECCV 2022; ``vtab1k_vitb16_in21k_published.csv``): FT, VPT-deep, VPT-shallow and
   linear, standard regime, 3 seeds.  A second, labelled row.

Both are ViT-B/16 pretrained on supervised ImageNet-21k; :func:`is_paper_backbone` says whether a study used that
backbone, which is when "ours - published" differences are meaningful.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import PurePath

SEED_PAPER = "han2024"
VPT_PAPER = "jia2022"
UNCERTAIN_MARK = "?"
# timm names whose weights are Google's original ImageNet-21k ViT-B/16 (the paper's backbone).
PAPER_BACKBONES = ("vit_base_patch16_224.orig_in21k",)
# File names (lower-cased) of the same weights: Google's (gs://vit_models/imagenet21k/ViT-B_16.npz) and the
# reference code's model zoo name for it (`sup_vitb16_imagenet21k`).
PAPER_CHECKPOINTS = ("vit-b_16.npz", "imagenet21k_vit-b_16.npz")


@dataclass(frozen=True)
class Reference:
    """One paper's published test top-1 (%): ``values[(regime, method)][task]``."""

    key: str
    label: str  # the row label's suffix, e.g. "published (Han et al. 2024)"
    citation: str
    file: str
    seeds: int
    aggregation: str  # how the paper aggregates over seeds, as far as it is known
    values: dict[tuple[str, str], dict[str, float]]
    uncertain: frozenset[tuple[str, str, str]] = frozenset()

    def get(self, regime: str, method: str) -> dict[str, float]:
        return self.values.get((regime, method), {})

    def methods(self, regime: str) -> list[str]:
        return [m for r, m in self.values if r == regime]

    def is_uncertain(self, regime: str, method: str, task: str) -> bool:
        return (regime, method, task) in self.uncertain

    def uncertain_cells(self, regime: str) -> list[tuple[str, str]]:
        """(method, task) of the flagged cells of ``regime``."""
        return sorted((m, t) for r, m, t in self.uncertain if r == regime)

    @property
    def source(self) -> str:
        return f"vptlab/resources/{self.file}"


def _rows(file: str) -> list[dict[str, str]]:
    text = resources.files("vptlab.resources").joinpath(file).read_text()
    return list(csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#")))


def _parse(rows: list[dict[str, str]]) -> tuple[dict, frozenset]:
    values, uncertain = {}, set()
    for row in rows:
        regime, method = row.pop("regime", None) or "standard", row.pop("method")
        flagged = [t for t in (row.pop("uncertain", None) or "").split(";") if t.strip()]
        values[(regime, method)] = {task: float(v) for task, v in row.items() if v not in (None, "")}
        uncertain |= {(regime, method, t.strip()) for t in flagged}
    return values, frozenset(uncertain)


@cache
def references() -> tuple[Reference, ...]:
    """The packaged references, the seed paper first."""
    han_values, han_uncertain = _parse(_rows("vtab1k_han2024_published.csv"))
    jia_values, _ = _parse(_rows("vtab1k_vitb16_in21k_published.csv"))
    return (
        Reference(
            SEED_PAPER,
            "published (Han et al. 2024)",
            'Han et al., "Facing the Elephant in the Room: Visual Prompt Tuning or Full Finetuning?", ICLR 2024 '
            "(the seed paper), Tables 1-4",
            "vtab1k_han2024_published.csv",
            5,
            "mean and np.std (ddof 0) over 5 seeds",
            han_values,
            han_uncertain,
        ),
        Reference(
            VPT_PAPER,
            "published (Jia et al. 2022)",
            'Jia et al., "Visual Prompt Tuning", ECCV 2022 (the VPT paper)',
            "vtab1k_vitb16_in21k_published.csv",
            3,
            "mean over 3 seeds",
            jia_values,
        ),
    )


def reference(key: str = SEED_PAPER) -> Reference:
    """The reference named ``key`` (``han2024``, the default, or ``jia2022``)."""
    for ref in references():
        if ref.key == key:
            return ref
    raise KeyError(f"no published reference {key!r}; known: {', '.join(r.key for r in references())}")


def is_paper_backbone(name: str | None, checkpoint: str | None = None) -> bool:
    """Whether a run's backbone is the paper's: Google's original ImageNet-21k ViT-B/16.

    Either timm's ``vit_base_patch16_224.orig_in21k``, or a ViT-B/16 architecture loading Google's
    ``ViT-B_16.npz`` (``imagenet21k_ViT-B_16.npz`` in the reference code's model folder).  Google's IN-21k ->
    IN-1k weights are ``ViT-B_16-224.npz`` (the reference config's default, not the paper's) and do not count;
    a file renamed to one of the names above cannot be told apart, so keep the names honest.
    """
    name = (name or "").removeprefix("timm/").removeprefix("hf-hub:timm/")
    if name in PAPER_BACKBONES:
        return True
    return (
        name.split(".")[0] == "vit_base_patch16_224"
        and bool(checkpoint)
        and PurePath(str(checkpoint)).name.lower() in PAPER_CHECKPOINTS
    )
