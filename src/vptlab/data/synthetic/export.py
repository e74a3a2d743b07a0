"""Write a synthetic task as a real VTAB-1k-format folder, so the real-data path runs offline end to end."""

from __future__ import annotations

import os
from pathlib import Path

from vptlab.data.synthetic.splits import generate
from vptlab.data.synthetic.tasks import get_task


def export_synthetic(
    task: str, out_dir: str | os.PathLike, image_size: int = 32, seed: int = 0, include_pool: bool = False
) -> Path:
    """Write ``<out_dir>/<task>/{train800,val200,train800val200,test}.txt`` and PNG images under ``images/``.

    Split lines are ``images/<split>/<i>.png <label>``; ``train800val200.txt`` lists the train800 and val200
    files (the same images, as in the release); ``task.json`` records the group, objective and classes.  ``include_pool`` also writes ``pool.txt`` (25,000 images) for
    the data-size study.  PNG is lossless: loading the folder at the same size gives the same pixels.
    Returns the task folder.
    """
    from vptlab.data.vtab1k import POOL, write_task_folder  # the VTAB-1k writer is the one format owner

    info = get_task(task).info  # a clear error for an unknown task before anything is written

    def get(split: str):
        if split == POOL and not include_pool:
            return None
        return generate(task, split, image_size=image_size, seed=seed)

    return write_task_folder(out_dir, task, get, info=info)
