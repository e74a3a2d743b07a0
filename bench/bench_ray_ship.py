"""What shipping a run's checkpoint to the driver costs on Ray, against writing that checkpoint to disk.

Every checkpoint a run saves on a Ray worker is sent on before the run goes on (``vptlab.study.executors.
_ray_ship``): read back, put into the inbox actor on the head, then written by the driver into the study folder.
This times, for checkpoints of a few sizes, the worker's wait (``ShipCheckpoints.checkpoint_saved``) and the
driver's share (``take`` + ``take_checkpoint``) as ratios to ``torch.save`` of the same state on the worker, which
every checkpoint costs anyway.  On one machine the "network" is loopback: across machines add size / bandwidth.

    .venv/bin/python bench/bench_ray_ship.py                 # 1, 16 and 128 MB
    .venv/bin/python bench/bench_ray_ship.py --sizes 1 8     # quicker

Starts a local Ray instance of its own (2 CPUs) and prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import ray
import torch

from vptlab.study.executors._ray_ship import Inbox, ShipCheckpoints, take_checkpoint


@ray.remote(num_cpus=1)
def _on_worker(inbox, megabytes: int, repeats: int) -> dict:
    """On a worker: save a checkpoint of ``megabytes`` as ``train_run`` does, then ship it; best of ``repeats``."""
    state = {"params": {"w": torch.randn(megabytes * 2**18)}, "epoch": 1}  # float32: 4 bytes each
    save, ship = [], []
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        (run_dir / "metrics.jsonl").write_text('{"epoch": 0}\n')
        shipper = ShipCheckpoints(inbox, "bench", 1, None)
        for _ in range(repeats):
            start = time.perf_counter()
            torch.save(state, run_dir / "checkpoint.pt")
            save.append(time.perf_counter() - start)
            start = time.perf_counter()
            shipper.checkpoint_saved(run_dir, run_dir / "checkpoint.pt", 1)
            ship.append(time.perf_counter() - start)
    return {"save_s": min(save), "ship_s": min(ship)}


def measure(megabytes: int, repeats: int, out: Path) -> dict:
    inbox = ray.remote(num_cpus=0)(Inbox).remote()
    worker = ray.get(_on_worker.remote(inbox, megabytes, repeats))
    start = time.perf_counter()
    items = ray.get(inbox.take.remote())
    _, _, _, files = items["bench"]
    take_checkpoint(out / "bench", "bench", files, None)
    driver = time.perf_counter() - start
    return {"megabytes": megabytes, **{k: round(v, 4) for k, v in worker.items()}, "driver_s": round(driver, 4),
            "worker_wait_vs_save": round(worker["ship_s"] / worker["save_s"], 2),
            "driver_vs_save": round(driver / worker["save_s"], 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 128], help="checkpoint sizes in MB")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = [measure(mb, args.repeats, Path(tmp)) for mb in args.sizes]
    finally:
        ray.shutdown()
    print(json.dumps({"machine": platform.machine(), "cpus": torch.get_num_threads(), "ray": ray.__version__,
                      "rows": rows}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
