"""GPU figures: training and evaluation images/s, peak memory and model FLOPs utilisation for the paper's setup.

ViT-B/16 at 224 (``vit_base_patch16_224``; random weights: throughput does not depend on them) under

* ``vpt-deep`` with 50 prompt tokens, batch 64 (the paper's VPT batch): gradients through the frozen backbone;
* ``full``, batch 128 (the paper's FT batch): gradients for every weight;
* ``linear``: the head alone, i.e. the one-off feature pass (evaluation throughput) plus a negligible head;

each with bf16 autocast, PyTorch's fused scaled-dot-product attention (timm's ``fused_attn``) and, with
``--compile``, ``torch.compile``.  Steps are the ones ``vptlab.train`` runs (forward, cross-entropy, backward,
optimiser step) on random uint8 images normalised on the GPU.  Timing: ``--warmup`` steps, then ``--steps``
steps between two ``torch.cuda.synchronize()``.  Peak memory: ``torch.cuda.max_memory_allocated`` over the timed
steps.  FLOPs per step are counted once with ``torch.utils.flop_counter.FlopCounterMode`` (so the frozen
backbone's missing weight gradients are not counted); MFU = achieved FLOP/s / the device's dense bf16 peak
(table below, or ``--peak-tflops``).

    python bench/bench_gpu.py --device-name nvidia-h100            # one command; ~2 minutes on an H100
    python bench/bench_gpu.py --device-name nvidia-h100 --compile  # + torch.compile (adds compile time)

The output ends with ``[[figure]]`` blocks for ``src/vptlab/resources/throughput.toml``: paste them there and
``vptlab study plan studies/paper.toml --hardware nvidia-h100`` prices the paper's study in hours.  Without a
CUDA device the script says so and exits with status 2.  ``--cpu`` runs the same code on the CPU in fp32 (by
default with the bundled vptlab-tiny at 32 px: the CPU figures in throughput.toml come from it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), from the vendors' data sheets; matched by device name.
BF16_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 80GB HBM3": 989.0,  # the SXM part's name in torch.cuda.get_device_name
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
}
METHODS = {
    "vpt-deep": 64,
    "full": 128,
    "linear": 256,
}  # method -> the paper's batch size (linear: eval batch)


@dataclass
class Setup:
    device: torch.device
    backbone: str
    image_size: int
    dtype: torch.dtype | None
    compile: bool


def peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    for key, value in BF16_PEAK_TFLOPS.items():
        if key.lower() in name.lower():
            return value
    return None


def build(
    method: str, setup: Setup, prompt_length: int
) -> tuple[torch.nn.Module, torch.optim.Optimizer | None]:
    """The model ``vptlab.train`` builds for ``method`` (backbone + method), on the device, and its optimiser."""
    from vptlab.methods import get_method
    from vptlab.train import RunConfig, build_model
    from vptlab.train.optim import build_optimizer

    options = {"prompt_length": prompt_length} if "prompt_length" in get_method(method).option_names else {}
    cfg = RunConfig(method=method, task="bench", backbone=setup.backbone, pretrained=False,
                    image_size=setup.image_size, options=options, epochs=2, warmup_epochs=1)  # fmt: skip
    model, m = build_model(cfg.resolved(), num_classes=100)
    for block in model.blocks:
        block.attn.fused_attn = (
            True  # torch's scaled_dot_product_attention (flash / memory-efficient kernels)
        )
    model.to(setup.device)
    m.train_mode(model)
    optimizer, _ = build_optimizer(model, m.optimizer, 1e-3, 1e-4)
    return model, optimizer


def autocast(setup: Setup) -> contextlib.AbstractContextManager:
    if setup.dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(setup.device.type, dtype=setup.dtype)


def batch(setup: Setup, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 images, normalised on the device as ``vptlab.train.loop.normalise`` does."""
    from vptlab.train.loop import normalise

    raw = torch.randint(0, 256, (n, setup.image_size, setup.image_size, 3), dtype=torch.uint8)
    x = normalise(raw, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), setup.device)
    return x, torch.randint(0, 100, (n,), device=setup.device)


def train_step(forward, optimizer, x, y, setup: Setup) -> None:
    with autocast(setup):
        logits = forward(x)
    loss = F.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def eval_step(forward, x, y, setup: Setup) -> None:
    with torch.inference_mode(), autocast(setup):
        forward(x)


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def timed(fn, setup: Setup, warmup: int, steps: int) -> tuple[float, int]:
    """Seconds per step over ``steps`` (after ``warmup``), and peak bytes allocated during them."""
    for _ in range(warmup):
        fn()
    sync(setup)
    if setup.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(setup.device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(setup)
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated(setup.device) if setup.device.type == "cuda" else 0
    return seconds, peak


def sync(setup: Setup) -> None:
    if setup.device.type == "cuda":
        torch.cuda.synchronize(setup.device)


def measure(method: str, setup: Setup, args: argparse.Namespace, peak: float | None) -> dict:
    model, optimizer = build(method, setup, args.prompt_length)
    forward = torch.compile(model) if setup.compile else model
    n = args.batch.get(method, METHODS[method])
    x, y = batch(setup, n)
    if method == "linear":  # a linear probe costs one feature pass over the data (the head is negligible)
        model.eval()
        step = functools.partial(eval_step, forward, x, y, setup)
    else:
        step = functools.partial(train_step, forward, optimizer, x, y, setup)
    flops = count_flops(step)
    seconds, peak_bytes = timed(step, setup, args.warmup, args.steps)
    model.eval()
    xe, ye = batch(setup, args.eval_batch)
    eval_seconds, _ = timed(
        functools.partial(eval_step, forward, xe, ye, setup), setup, args.warmup, args.steps
    )
    achieved = flops / seconds
    row = {
        "method": method,
        "batch": n,
        "train_img_per_s": round(n / seconds, 1) if method != "linear" else None,
        "eval_img_per_s": round(args.eval_batch / eval_seconds, 1),
        "step_ms": round(1000 * seconds, 2),
        "peak_memory_gib": round(peak_bytes / 2**30, 2),
        "tflop_per_step": round(flops / 1e12, 3),
        "achieved_tflops": round(achieved / 1e12, 1),
        "mfu": round(achieved / (peak * 1e12), 3) if peak else None,
    }
    del model, optimizer, forward, step
    if setup.device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def toml_figures(rows: list[dict], args: argparse.Namespace, setup: Setup) -> str:
    """``[[figure]]`` blocks for ``vptlab/resources/throughput.toml``."""
    kinds = {"vpt-deep": "frozen", "full": "full", "linear": "linear"}
    today = datetime.date.today().isoformat()
    flag = (" --cpu" if args.cpu else "") + (" --compile" if setup.compile else "")
    out = []
    for r in rows:
        train = r["train_img_per_s"] if r["train_img_per_s"] is not None else r["eval_img_per_s"]
        out.append(
            "[[figure]]\n"
            f'device = "{args.device_name}"\n'
            f'backbone = "{setup.backbone}"\n'
            f"image_size = {setup.image_size}\n"
            f'kind = "{kinds[r["method"]]}"\n'
            f"train_img_per_s = {train}\n"
            f"eval_img_per_s = {r['eval_img_per_s']}\n"
            f'precision = "{"bf16" if setup.dtype else "fp32"}"\n'
            f'source = "python bench/bench_gpu.py --device-name {args.device_name}{flag} ({today}'
            f'{f", prompt length {args.prompt_length}" if r["method"] == "vpt-deep" else ""}, batch {r["batch"]})"\n'
        )
    return "\n".join(out)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device-name", default="gpu", help="the name --hardware will use (e.g. nvidia-h100)"
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--backbone", default="vit_base_patch16_224")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--prompt-length", type=int, default=50)
    parser.add_argument(
        "--batch", type=json.loads, default={}, help="per-method batch, e.g. '{\"full\": 64}'"
    )
    parser.add_argument("--eval-batch", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (mode default)")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, if not in the table")
    parser.add_argument(
        "--cpu", action="store_true", help="measure on the CPU, fp32 (default there: vptlab-tiny at 32 px)"
    )
    parser.add_argument("--threads", type=int, default=0, help="--cpu: torch threads (0: torch's default)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.cpu:
        if args.threads:
            torch.set_num_threads(args.threads)
        tiny = args.backbone == "vit_base_patch16_224"
        setup = Setup(torch.device("cpu"), "vptlab-tiny" if tiny else args.backbone, 32 if tiny else args.image_size,
                      None, args.compile)  # fmt: skip
        name, peak = f"cpu ({torch.get_num_threads()} threads; not a GPU figure)", None
    elif not torch.cuda.is_available():
        print("bench_gpu.py: needs a CUDA GPU and none is visible (torch.cuda.is_available() is False); "
              "no figure measured (--cpu measures on the CPU)", file=sys.stderr)  # fmt: skip
        return 2
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        setup = Setup(torch.device("cuda"), args.backbone, args.image_size, None if args.fp32 else torch.bfloat16,
                      args.compile)  # fmt: skip
        name = torch.cuda.get_device_name(0)
        peak = peak_tflops(name, args.peak_tflops)
    rows = [measure(m, setup, args, peak) for m in args.methods]
    print(json.dumps({"device": name, "bf16_peak_tflops": peak, "backbone": setup.backbone,
                      "image_size": setup.image_size, "compile": setup.compile,
                      "precision": "bf16-autocast" if setup.dtype else "fp32", "torch": torch.__version__,
                      "rows": rows}, indent=2))  # fmt: skip
    print("\n# for src/vptlab/resources/throughput.toml (linear: the feature pass; an upper bound, since a")
    print("# linear run computes its features once and its epochs then cost next to nothing):\n")
    print(toml_figures(rows, args, setup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
