"""The cost profile in result.json: counted parameters and FLOPs against formulas, PPT, the measured probe."""

from __future__ import annotations

import math

import pytest
import torch

from vptlab.backbones import create_backbone
from vptlab.backbones.prompts import attach_prompts
from vptlab.train import train_run
from vptlab.train.cost import count_flops, measure_throughput, ppt_score
from vptlab.train.loop import Precision

D, DEPTH, HEADS, SIZE, PATCH, CLASSES = 32, 2, 2, 16, 8, 4


def vit_flops(prompts: int = 0) -> int:
    """Forward FLOPs (2 per multiply-add) of timm's ViT with a class token, ``prompts`` extra tokens in every
    block, token pooling: patch embedding, per block qkv + QK^T + AV + proj + 2-layer MLP (4D), then the head."""
    n = (SIZE // PATCH) ** 2
    t = 1 + prompts + n
    embed = 2 * n * (3 * PATCH * PATCH) * D
    block = 2 * t * D * 3 * D + 2 * t * t * D + 2 * t * t * D + 2 * t * D * D + 2 * (2 * t * D * 4 * D)
    return embed + DEPTH * block + 2 * D * CLASSES


def tiny_vit():
    return create_backbone("vptlab-tiny", num_classes=CLASSES, pretrained=False, image_size=SIZE,
                           depth=DEPTH, embed_dim=D, num_heads=HEADS)  # fmt: skip


def test_flops_of_a_tiny_vit_match_the_formula():
    assert count_flops(tiny_vit(), SIZE) == vit_flops()


@pytest.mark.parametrize("deep", [False, True])
def test_flops_count_the_prompt_tokens(deep):
    model = tiny_vit()
    attach_prompts(model, 10, deep=deep)
    # shallow prompts enter at the first block and travel through all of them: the same token count as deep
    assert count_flops(model, SIZE) == vit_flops(prompts=10)


def test_ppt_is_v_petl_benchs_formula():
    assert ppt_score(80.0, 10_000_000) == pytest.approx(80.0 * math.exp(-math.log10(2.0)))
    assert ppt_score(80.0, 0) == 80.0
    assert ppt_score(80.0, 1000) > ppt_score(80.0, 1_000_000) > ppt_score(80.0, 86_000_000)


def test_every_run_records_its_cost_profile(tiny_cfg, toy_task, tmp_path):
    result = train_run(tiny_cfg("vpt-deep", prompt_length=10), tmp_path, task_data=toy_task)
    cost = result["cost"]
    assert cost["trainable_params_without_head"] == DEPTH * 10 * D  # one prompt set per block
    assert cost["trainable_params"] == cost["trainable_params_without_head"] + D * CLASSES + CLASSES
    assert cost["trainable_params"] == result["params"]["trainable"]
    assert cost["tuned_bytes"] == 4 * cost["trainable_params"]  # fp32
    assert cost["flops_per_image"] == vit_flops(prompts=10)
    assert cost["train_images_per_s"] > 0 and cost["inference_images_per_s"] > 0
    assert cost["peak_memory_bytes"] > 0 and isinstance(cost["measured_by"], str)
    assert cost["peak_memory_kind"] in ("process_peak_rss", "process_peak_rss_since_start")
    assert cost["ppt"] == pytest.approx(
        ppt_score(result["metrics"]["test_top1"], cost["trainable_params"]), abs=1e-3
    )
    assert cost["ppt_accuracy"] == "test_top1"


def test_linear_grid_runs_get_the_profile_too(tiny_cfg, toy_task, tmp_path):
    from vptlab.train import train_linear_grid

    cfgs = [tiny_cfg("linear", lr=lr) for lr in (0.1, 1.0)]
    results = train_linear_grid(cfgs, [tmp_path / "a", tmp_path / "b"], task_data=toy_task)
    # the two grid points compute the same steps: one probe serves both, and says whose it was
    assert results[0]["cost"]["measured_by"] == results[1]["cost"]["measured_by"]
    assert results[0]["cost"]["train_images_per_s"] == results[1]["cost"]["train_images_per_s"]
    for r in results:
        assert r["cost"]["trainable_params"] == D * CLASSES + CLASSES
        assert r["cost"]["trainable_params_without_head"] == 0
        assert r["cost"]["flops_per_image"] == vit_flops()


def test_the_probe_leaves_the_tuned_weights_as_they_are(toy_task):
    from vptlab.methods import get_method

    model = tiny_vit()
    method = get_method("full")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = measure_throughput(model, toy_task, batch_size=16, optimizer_kind="adamw", train_mode=method.train_mode,
                             precision=Precision.choose(torch.device("cpu"), "auto"))  # fmt: skip
    assert out["train_batch"] == 16 and out["inference_batch"] == len(toy_task.test)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_failed_runs_write_no_probe(tiny_cfg, toy_task, tmp_path):
    result = train_run(tiny_cfg("vpt-deep", lr=1e30, epochs=2), tmp_path, task_data=toy_task)
    assert result["status"] == "diverged"
    assert "train_images_per_s" not in (result.get("cost") or {})
