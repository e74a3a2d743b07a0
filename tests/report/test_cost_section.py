"""The report's cost section: accuracy against trainable parameters (log x) and the cost profile per method."""

from __future__ import annotations

import pytest

from vptlab.report.cost import accuracy_params_figure, cost_section, cost_table, method_costs


def _run(method: str, task: str, seed: int, acc: float, params: int, stage: str = "final") -> dict:
    cost = {"trainable_params": params, "trainable_params_without_head": params - 10, "tuned_bytes": 4 * params,
            "flops_per_image": 2e9, "train_images_per_s": 100.0, "inference_images_per_s": 400.0,
            "peak_memory_bytes": 2**30, "peak_memory_kind": "cuda_allocator_peak", "ppt": acc, "device": "cuda"}  # fmt: skip
    return {"status": "ok", "config": {"method": method, "task": task, "seed": seed, "stage": stage,
            "regime": "standard"}, "metrics": {"test_top1": acc}, "cost": cost}  # fmt: skip


RESULTS = [
    _run("full", "a", 1, 80.0, 86_000_000),
    _run("full", "a", 2, 82.0, 86_000_000),
    _run("full", "b", 1, 60.0, 86_000_000),
    _run("vpt-deep", "a", 1, 70.0, 100_000),
    _run("vpt-deep", "b", 1, 50.0, 100_000),
    _run("vpt-deep", "b", 1, 10.0, 100_000, stage="tune"),  # tune runs are not the method's result
    {
        "status": "ok",
        "config": {"method": "lora", "task": "a", "stage": "final"},
        "metrics": {"test_top1": 1.0},
    },
]


def test_method_costs_average_tasks_after_seeds():
    costs = method_costs(RESULTS)
    assert set(costs) == {"full", "vpt-deep"}  # lora's run has no cost profile (an old run)
    assert costs["full"]["accuracy"] == pytest.approx((81.0 + 60.0) / 2)
    assert costs["vpt-deep"]["accuracy"] == pytest.approx(60.0) and costs["vpt-deep"]["runs"] == 2
    assert costs["full"]["trainable_params"] == 86_000_000


def test_table_and_figure():
    costs = method_costs(RESULTS)
    table = cost_table(costs)
    lines = table.splitlines()
    assert lines[2].startswith("| VPT-deep") and lines[3].startswith("| FT")  # fewest parameters first
    assert "| 1,024 |" in lines[3]  # peak MiB
    ax = accuracy_params_figure(costs).axes[0]
    assert ax.get_xscale() == "log" and len(ax.collections) == 4  # per method: tasks + mean


def test_section_without_profiles_says_so():
    assert "No final run" in cost_section(RESULTS[-1:]).blocks[0][1]
