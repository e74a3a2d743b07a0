"""Every method that applies to a backbone family trains one epoch on a small random-init backbone of it."""

from __future__ import annotations

import pytest

from vptlab.data.base import TaskData, TaskInfo
from vptlab.errors import UserError
from vptlab.methods.base import get_method, methods_for_family
from vptlab.train import RunConfig, train_run
from vptlab_testing import make_imageset

VIT = dict(depth=1, embed_dim=16, num_heads=2, patch_size=8)
# name, backbone, timm overrides, expected family, expected pooling
BACKBONES = {
    "vit-cls": ("vptlab-tiny", VIT, "vit", "token"),
    "vit-registers": ("vptlab-tiny", dict(VIT, reg_tokens=2), "vit-registers", "token"),
    "vit-avg-fc_norm": ("vptlab-tiny", dict(VIT, class_token=False, global_pool="avg"), "vit", "avg"),
    "clip-prenorm": ("vit_base_patch16_clip_224", VIT, "vit", "token"),
    "swin": (
        "swin_tiny_patch4_window7_224",
        dict(patch_size=4, embed_dim=8, depths=(1, 1), num_heads=(1, 2), window_size=2),
        "swin",
        "avg",
    ),
    "convnext": (
        "convnext_atto",
        dict(patch_size=1, depths=(1, 1, 1, 1), dims=(8, 8, 8, 8)),
        "convnet",
        "avg",
    ),
}
CASES = [
    (key, method) for key, (_, _, family, _) in BACKBONES.items() for method in methods_for_family(family)
]


@pytest.fixture(scope="module")
def small_task():
    info = TaskInfo("toy", "natural", "classification", 4)
    return TaskData(
        info, make_imageset(16, 1), make_imageset(8, 2), make_imageset(8, 3), record={"source": "t"}
    )


def _cfg(key: str, method: str) -> RunConfig:
    name, args, _, _ = BACKBONES[key]
    opts = {"prompt_length": 2} if "prompt_length" in get_method(method).option_names else {}
    return RunConfig.of(method=method, task="toy", data="test", backbone=name, pretrained=False,
                        backbone_args=tuple(args.items()), image_size=16, epochs=1, warmup_epochs=0,
                        batch_size=8, **opts)  # fmt: skip


@pytest.mark.parametrize(("key", "method"), CASES, ids=[f"{k}-{m}" for k, m in CASES])
def test_every_applicable_method_trains_one_epoch(key, method, small_task, tmp_path):
    result = train_run(_cfg(key, method), tmp_path, task_data=small_task)
    assert result["status"] == "ok", result.get("error")
    _, _, family, pool = BACKBONES[key]
    assert result["backbone"]["family"] == family and result["backbone"]["global_pool"] == pool
    assert 0 < result["params"]["trainable"] <= result["params"]["total"]
    assert result["metrics"]["test_top1"] is not None


def test_every_family_has_methods_and_prompts_do_not_apply_to_convnets():
    for family in ("vit", "vit-registers", "swin"):
        assert {"vpt-deep", "vpt-shallow", "full", "linear"} <= set(methods_for_family(family))
    assert {"full", "linear", "bias"} <= set(methods_for_family("convnet"))
    assert "vpt-deep" not in methods_for_family("convnet")


def test_prompts_on_a_convnet_are_refused_naming_the_methods_that_apply(small_task, tmp_path):
    with pytest.raises(
        UserError, match=r"vpt-deep does not apply to convnet .*methods for convnet: full"
    ) as err:
        train_run(_cfg("convnext", "vpt-deep"), tmp_path, task_data=small_task)
    assert "\n" not in str(err.value)
