"""``python ray_driver.py ARGS``: ``vptlab ARGS`` with :func:`rayhooks.hooked_run_job` as the run function."""

from __future__ import annotations

import sys

import rayhooks

import vptlab.study.worker

if __name__ == "__main__":
    vptlab.study.worker.run_job = rayhooks.hooked_run_job  # make_executor looks it up when it runs
    from vptlab.cli import main

    sys.exit(main(sys.argv[1:]))
