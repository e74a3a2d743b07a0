"""One table of guarantees checked for every registered method (peft's test_custom_models style)."""

from __future__ import annotations

import pytest
import torch

from vptlab.methods import get_method, list_methods, method_names
from vptlab.train import build_model, load_run_model, train_run
from vptlab.train.loop import Precision, evaluate, train_epoch
from vptlab.train.optim import build_optimizer

L, D, N, C, R = 2, 32, 10, 4, 8  # depth, width, prompt length, classes, LoRA rank
PATCH_TOKENS = 4
BLOCK_BIASES = 3 * D + D + 4 * D + D + 2 * D  # qkv, proj, fc1, fc2, norm1 + norm2 biases per block
HEAD = D * C + C

# method -> (is this parameter meant to train?, trainable count)
EXPECTED = {
    "linear": (lambda n: n.startswith("head."), HEAD),
    "full": (lambda n: True, None),
    "vpt-shallow": (lambda n: n.startswith(("vpt.", "head.")), N * D + HEAD),
    "vpt-deep": (lambda n: n.startswith(("vpt.", "head.")), L * N * D + HEAD),
    "mixed": (lambda n: True, None),
    "ft-then-pt": (lambda n: n.startswith(("vpt.", "head.")), L * N * D + HEAD),
    "bias": (
        lambda n: n.endswith(".bias") or n == "head.weight",
        L * BLOCK_BIASES + D + D + HEAD,
    ),  # + patch embedding and final norm biases
    "lora": (lambda n: "lora_" in n or n.startswith("head."), L * 2 * (D * R + R * D) + HEAD),  # q and v
    # the PETL methods at their default options (bottleneck / rank 8, k = 1, Mlp-3); docs/petl-methods.md
    "adapter": (lambda n: ".mlp.adapter." in n or n.startswith("head."), L * (D * R + R + R * D + D) + HEAD),
    "adaptformer": (
        lambda n: ".mlp.adaptformer." in n or n.startswith("head."),
        L * (D * R + R + R * D + D) + HEAD,
    ),
    "ssf": (lambda n: ".ssf." in n or n.startswith("head."), 2 * D * (2 + 11 * L) + HEAD),
    "fact": (lambda n: "fact." in n or n.startswith("head."), 2 * D * R + 12 * L * R * R + HEAD),
    "convpass": (
        lambda n: ".convpass." in n or n.startswith("head."),
        2 * L * (2 * D * R + 9 * R * R + 2 * R + D) + HEAD,
    ),
    "repadapter": (
        lambda n: ".repadapter." in n or n.startswith("head."),
        2 * L * (D * R + R + D * R // 2 + D) + HEAD,
    ),
    "dora": (lambda n: ".qkv.dora." in n or n.startswith("head."), L * 2 * (2 * R * D + D) + HEAD),
    "ln-tune": (lambda n: "norm" in n or n.startswith("head."), 2 * D * (2 * L + 1) + HEAD),
    "partial-k": (
        lambda n: n.startswith((f"blocks.{L - 1}.", "norm.", "head.")),
        12 * D * D + 13 * D + 2 * D + HEAD,  # qkv 3D^2+3D, proj D^2+D, fc1 4D^2+4D, fc2 4D^2+D, two norms 4D
    ),
    "mlp-head": (lambda n: n.startswith("head."), 2 * (D * D + D) + HEAD),
}
ADAMW = {"full", "lora", "adapter", "adaptformer", "ssf", "fact", "convpass", "repadapter", "dora", "ln-tune"}


def test_every_registered_method_is_in_the_table():
    assert set(method_names()) == set(EXPECTED)
    for m in list_methods():
        assert m.optimizer == ("adamw" if m.name in ADAMW else "sgd")
        assert m.grid["wd"] == (0.01, 0.001, 0.0001, 0.0)
        assert len(m.grid["lr"]) == (4 if m.optimizer == "adamw" else 10)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_exactly_the_intended_parameters_change(name, tiny_cfg, toy_task):
    cfg = tiny_cfg(name, lr=2.0 if get_method(name).optimizer == "sgd" else 0.05, wd=0.0).resolved()
    model, method = build_model(cfg, C)
    intended, count = EXPECTED[name]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer, _ = build_optimizer(model, method.optimizer, cfg.lr, cfg.wd)
    method.train_mode(model)
    precision = Precision.choose(torch.device("cpu"), "fp32")
    train_epoch(
        model,
        toy_task.train,
        epoch=0,
        seed=0,
        batch_size=16,
        optimizer=optimizer,
        set_lr=lambda e, s: cfg.lr,
        mean=toy_task.mean,
        std=toy_task.std,
        precision=precision,
    )
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {n for n in before if intended(n)}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == (count if count is not None else sum(p.numel() for p in model.parameters()))
    x = torch.randn(3, 3, 16, 16)
    assert torch.isfinite(model.eval()(x)).all()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_saved_tuned_parameters_reproduce_the_run(name, tiny_cfg, toy_task, tmp_path):
    cfg = tiny_cfg(name, epochs=1, warmup_epochs=0)
    result = train_run(cfg, tmp_path / name, task_data=toy_task)
    assert result["status"] == "ok"
    model, loaded_cfg = load_run_model(tmp_path / name)
    assert loaded_cfg.run_id == cfg.run_id
    s = evaluate(
        model,
        toy_task.test,
        mean=toy_task.mean,
        std=toy_task.std,
        precision=Precision.choose(torch.device("cpu"), "fp32"),
    )
    assert s.top1 == pytest.approx(result["metrics"]["test_top1"])
    assert s.loss == pytest.approx(result["metrics"]["test_loss"], rel=1e-5)
    saved = (tmp_path / name / "tuned.safetensors").stat().st_size
    assert saved < 4 * result["params"]["trainable"] + 4096  # only the tuned tensors, fp32


def test_prompt_methods_keep_the_backbone_in_eval_mode(tiny_cfg):
    cfg = tiny_cfg("vpt-deep", backbone_dropout=None).resolved()
    model, method = build_model(cfg, C)
    method.train_mode(model)
    assert not model.blocks[0].training and model.vpt.training
    cfg = tiny_cfg("full").resolved()
    model, method = build_model(cfg, C)
    method.train_mode(model)
    assert model.blocks[0].training
