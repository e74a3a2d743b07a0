"""``vptlab report`` on a real tiny study: the study runner over a two-task VTAB-1k-style folder, then the report."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vptlab.report import ReportOptions, build_report
from vptlab_testing import TINY_BACKBONE

COUNTS = {"train800": 16, "val200": 8, "test": 8}
SPEC = (
    'name = "tiny-report"\n'
    + TINY_BACKBONE  # no braces in it: SPEC.format fills {root}
    + """
[data]
source = "vtab1k:{root}"
tasks = ["patch_camelyon", "kitti"]
[training]
epochs = 2
warmup_epochs = 0
eval_test_every = 1
seeds = [1, 2]
[regimes]
standard = true
kshot = [1]
[methods.full]
lr = [0.001]
wd = [0.0]
batch_size = 16
[methods.vpt-deep]
lr = [1.0, 0.1]
wd = [0.0]
prompt_length = 2
batch_size = 16
"""
)


def _vtab_task(root: Path, task: str, classes: int, seed: int) -> None:
    """``root/task/`` with small images and the four split files; class c brightens channel c % 3."""
    rng = np.random.default_rng(seed)
    lines: dict[str, list[str]] = {}
    for split, n in COUNTS.items():
        lines[split] = []
        for i in range(n):
            label = i % classes
            img = rng.integers(0, 60, (16, 16, 3), dtype=np.uint8)
            img[..., label % 3] += 150
            rel = f"images/{split}/{i}.png"
            (root / task / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / task / rel)
            lines[split].append(f"{rel} {label}\n")
    lines["train800val200"] = lines["train800"] + lines["val200"]
    for split, split_lines in lines.items():
        (root / task / f"{split}.txt").write_text("".join(split_lines))


@pytest.mark.slow
def test_report_on_a_study_run_by_the_study_runner(tmp_path):
    from vptlab.study.runner import run_study
    from vptlab.study.spec import parse_spec

    data = tmp_path / "vtab"
    _vtab_task(data, "patch_camelyon", 2, 0)
    _vtab_task(data, "kitti", 4, 1)
    out = tmp_path / "study"
    run_study(parse_spec(SPEC.format(root=data)), out, echo=lambda line: None)
    fids = tmp_path / "fid.csv"
    fids.write_text("task,fid\npatch_camelyon,30.0\nkitti,10.0\n")
    files = build_report(out, None, ReportOptions(fid_csv=str(fids), attention_images=2))
    md = files.markdown.read_text()
    assert files.html.is_file() and (out / "report" / "fig3_quadrants.png").is_file()
    assert {p.name for p in files.figures} >= {
        "fig3_quadrants.png",
        "fig5_loss_curves.png",
        "attention_kitti.png",
    }
    assert "final/ok: 16" in md and re.search(r"tune/\w+: \d", md)  # tune runs are counted, never averaged
    assert "| FT, published (Jia et al. 2022) |" in md  # VTAB-1k task names: the published rows appear
    assert "Tuned/Total, VPT-deep" in md
    assert "No size:N runs of FT and VPT in this study" in md
