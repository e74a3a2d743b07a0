"""The published references (the seed paper first, the VPT paper second) and how the tables set ours beside them."""

from __future__ import annotations

from vptlab.analysis.published import is_paper_backbone, reference, references
from vptlab.analysis.results import final_cells
from vptlab.analysis.tables import accuracy_table, published_notes

STRUCTURED = {"clevr_dist", "dmlab", "kitti"}


def row(method, task, acc, seed, regime="standard", source="vtab1k:/data"):
    group = "structured" if task in STRUCTURED else "natural"
    objective = "structured" if task in STRUCTURED else "classification"
    return {
        "status": "ok",
        "config": {
            "method": method,
            "task": task,
            "stage": "final",
            "regime": regime,
            "seed": seed,
            "data": source,
        },
        "task": {"name": task, "group": group, "objective": objective, "num_classes": 10},
        "metrics": {"test_top1": acc},
        "params": {"trainable": 10, "total": 1000},
        "data": {"source": source},
        "run_dir": f"/runs/{method}-{task}-{regime}-{seed}",
    }


def runs(method, task, values, regime="standard", source="vtab1k:/data"):
    return [row(method, task, v, s, regime, source) for s, v in zip((42, 44, 82, 100, 800), values)]


def test_the_packaged_references():
    han, jia = references()
    assert (han.key, han.seeds, jia.key, jia.seeds) == ("han2024", 5, "jia2022", 3)
    assert han.methods("standard") == ["full", "vpt-deep", "mixed", "ft-then-pt"]
    assert han.methods("kshot:1") == ["full", "vpt-deep"]
    assert all(len(han.get(r, m)) == 19 for r in ("standard", "kshot:1") for m in han.methods(r))
    assert han.uncertain_cells("standard") == [("vpt-deep", "clevr_dist"), ("vpt-deep", "kitti")]
    assert han.uncertain_cells("kshot:1") == []
    # cells as printed in the seed paper's Tables 1-4 and the VPT paper's Table 1
    assert (
        han.get("standard", "full")["cifar"] == 64.5 and han.get("standard", "mixed")["dsprites_loc"] == 20.9
    )
    assert (
        han.get("standard", "ft-then-pt")["cifar"] == 85.9 and han.get("kshot:1", "vpt-deep")["cifar"] == 54.6
    )
    assert jia.get("standard", "full")["cifar"] == 68.9 and jia.methods("kshot:1") == []
    assert "ddof 0" in han.aggregation and reference() is han


def test_uncertain_cells_are_marked():
    rows = [*runs("full", "kitti", [70, 71, 72]), *runs("vpt-deep", "kitti", [74, 75, 76])]
    rows += [*runs("full", "clevr_dist", [50, 51, 52]), *runs("vpt-deep", "clevr_dist", [55, 56, 57])]
    cells = final_cells(rows)
    lines = accuracy_table(cells, "standard", ("structured",)).splitlines()
    han_vpt = next(ln for ln in lines if ln.startswith("| VPT-deep, published (Han et al. 2024) |"))
    assert "| 58.2? | 77.7? | 68.0? (1) |" in han_vpt  # both flagged cells, and the group mean built on them
    han_ft = next(ln for ln in lines if ln.startswith("| FT, published (Han et al. 2024) |"))
    assert "?" not in han_ft
    assert "?" not in next(ln for ln in lines if ln.startswith("| VPT-deep, published (Jia et al. 2022) |"))
    notes = " ".join(published_notes(cells, "standard"))
    assert "VPT-deep clevr_dist, VPT-deep kitti" in notes and "uncertain" in notes


def test_ours_minus_published_and_the_seed_spread_with_either_ddof():
    # dmlab, published VPT-deep 45.3: ours 44.4 (std 1.0 with ddof 1, 0.82 with ddof 0) -> -0.9
    rows = [*runs("full", "dmlab", [40, 40.5, 41]), *runs("vpt-deep", "dmlab", [43.4, 44.4, 45.4])]
    rows += [*runs("full", "kitti", [74, 75, 76]), *runs("vpt-deep", "kitti", [70, 71, 72])]  # kitti: 77.7?
    cells = final_cells(rows)
    sample = accuracy_table(cells, "standard", ("structured",), differences=True).splitlines()
    vpt = next(ln for ln in sample if ln.startswith("| VPT-deep, ours − published (Han et al. 2024) |"))
    assert vpt.split(" | ")[1:3] == ["-0.9 ✓", "-6.7? ✗"]
    assert vpt.endswith("| -3.8 (1/2 ✓) |")
    assert "44.4 ± 1.0" in next(ln for ln in sample if ln.startswith("| VPT-deep |"))
    numpy_std = accuracy_table(cells, "standard", ("structured",), differences=True, ddof=0).splitlines()
    assert "44.4 ± 0.8" in next(ln for ln in numpy_std if ln.startswith("| VPT-deep |"))
    vpt0 = next(ln for ln in numpy_std if ln.startswith("| VPT-deep, ours − published"))
    assert vpt0.split(" | ")[1] == "-0.9 ✗"  # outside one np.std, inside one sample std
    ft = next(ln for ln in sample if ln.startswith("| FT, ours − published (Han et al. 2024) |"))
    assert ft.split(" | ")[1:3] == ["+0.1 ✓", "+0.3 ✓"]  # FT dmlab 40.4, kitti 74.7
    assert not any("ours −" in ln for ln in accuracy_table(cells, "standard", ("structured",)).splitlines())
    assert "ddof 0" in " ".join(published_notes(cells, "standard", ddof=1, differences=True))


def test_one_shot_tables_have_the_published_one_shot_rows():
    rows = [*runs("full", "cifar", [30, 31], "kshot:1"), *runs("vpt-deep", "cifar", [50, 52], "kshot:1")]
    text = accuracy_table(final_cells(rows), "kshot:1", tuned_row=True, differences=True)
    assert "| FT, published (Han et al. 2024) | 37.4 | 37.4 |" in text
    assert "| VPT-deep, published (Han et al. 2024) | 54.6 | 54.6 (1) |" in text
    assert "Jia et al." not in text  # the VPT paper has no one-shot numbers
    assert "| VPT-deep, ours − published (Han et al. 2024) | -3.6 ✗ |" in text


def test_no_published_rows_off_vtab():
    rows = [
        *runs("full", "cifar", [30, 31], source="synthetic"),
        *runs("vpt-deep", "cifar", [50, 52], source="synthetic"),
    ]
    cells = final_cells(rows)
    assert "published" not in accuracy_table(cells, "standard", differences=True)
    assert published_notes(cells, "standard") == []


def test_the_paper_backbone():
    assert is_paper_backbone("vit_base_patch16_224.orig_in21k")
    assert is_paper_backbone("timm/vit_base_patch16_224.orig_in21k", None)
    assert is_paper_backbone("vit_base_patch16_224", "/weights/ViT-B_16.npz")
    assert is_paper_backbone(
        "vit_base_patch16_224", "models/imagenet21k_ViT-B_16.npz"
    )  # the reference's name
    assert not is_paper_backbone("vit_base_patch16_224", "models/ViT-B_16-224.npz")  # IN-21k -> IN-1k
    assert not is_paper_backbone("vit_base_patch16_224.augreg_in21k")  # other weights (AugReg)
    assert not is_paper_backbone("vit_base_patch16_224", "/weights/other.safetensors")
    assert not is_paper_backbone("vit_small_patch16_224", "/weights/ViT-B_16.npz")
    assert not is_paper_backbone("vptlab-tiny", None)
