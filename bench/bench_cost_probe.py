"""What the cost profile adds to a run: the probe's seconds against the run's own seconds per epoch.

Every finished run gets a cost profile (:mod:`vptlab.train.cost`): FLOPs counted on one image, and a probe of
1 + 3 training steps and 1 + 2 inference batches on the run's own images.  This trains ``--epochs`` epochs of each
method on one synthetic task (vptlab-tiny, tune stage), then times ``run_cost`` on the finished model, and prints
the probe's seconds as a fraction of one epoch of that run (same process, same machine, interleaved).

    .venv/bin/python bench/bench_cost_probe.py                      # count, 2 epochs, vpt-deep, full, linear
    .venv/bin/python bench/bench_cost_probe.py --task satellite --epochs 3
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from vptlab.data import load_task
from vptlab.train import RunConfig, train_run
from vptlab.train.cost import run_cost
from vptlab.train.model import load_run_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="count")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--methods", default="vpt-deep,full,linear")
    args = p.parse_args()
    data = load_task("synthetic", args.task, image_size=32)
    device = torch.device("cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            cfg = RunConfig.of(method=method, task=args.task, epochs=args.epochs, warmup_epochs=0)
            result = train_run(cfg, Path(tmp) / method, task_data=data, device=device, progress=False)
            model, cfg = load_run_model(Path(tmp) / method, device)
            start = time.perf_counter()
            run_cost(model, data, cfg.resolved(), result, device, Path(tmp) / method)
            probe = time.perf_counter() - start
            epoch = (
                result["seconds"] / args.epochs
            )  # the run's seconds (data, train, eval) stop before its probe
            rows.append({"method": method, "probe_s": round(probe, 2), "epoch_s": round(epoch, 2),
                         "probe_per_epoch": round(probe / epoch, 3)})  # fmt: skip
    print(json.dumps({"task": args.task, "epochs": args.epochs, "threads": torch.get_num_threads(),
                      "cpu": platform.processor() or platform.machine(), "rows": rows}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
