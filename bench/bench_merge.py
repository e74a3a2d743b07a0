"""Inference cost of the reparameterisable PETL methods before and after ``merge`` (issue 14).

For each of ssf, fact, repadapter and dora: evaluation images/s of the tuned model with its modules attached,
of the same model after ``method.merge(model)``, and of the plain backbone (the ``linear`` model), each as a ratio
to the plain backbone measured in the same run.  Timings interleave the three models over ``--repeats`` rounds
and keep each model's median, so a shared machine's load affects all three alike.  Random weights (throughput does
not depend on them); fp32; ``torch.inference_mode``.

    python bench/bench_merge.py                                  # vptlab-tiny at 32 px, batch 64, CPU
    python bench/bench_merge.py --backbone vit_base_patch16_224 --image-size 224 --batch 32 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vptlab.methods import get_method
from vptlab.train import RunConfig, build_model

METHODS = ("ssf", "fact", "repadapter", "dora")


def images_per_s(model: torch.nn.Module, x: torch.Tensor, steps: int) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    with torch.inference_mode():
        model(x)
        sync()
        t = time.perf_counter()
        for _ in range(steps):
            model(x)
        sync()
    return steps * x.shape[0] / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="vptlab-tiny")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.image_size, args.image_size, device=args.device)

    def model(method: str) -> torch.nn.Module:
        cfg = RunConfig(
            method=method, task="t", backbone=args.backbone, pretrained=False, image_size=args.image_size
        )
        return build_model(cfg, 10)[0].to(args.device).eval()

    print(
        f"{args.backbone} @ {args.image_size}px, batch {args.batch}, {args.device}, median of {args.repeats}"
    )
    print("method      attached/plain  merged/plain")
    for name in METHODS:
        plain, attached, merged = model("linear"), model(name), model(name)
        get_method(name).merge(merged)
        rates: dict[str, list[float]] = {"plain": [], "attached": [], "merged": []}
        for _ in range(args.repeats):
            for key, m in (("plain", plain), ("attached", attached), ("merged", merged)):
                rates[key].append(images_per_s(m, x, args.steps))
        med = {k: statistics.median(v) for k, v in rates.items()}
        print(f"{name:<11} {med['attached'] / med['plain']:>14.2f}  {med['merged'] / med['plain']:>12.2f}")


if __name__ == "__main__":
    main()
