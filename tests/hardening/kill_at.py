"""Run ``vptlab ARGS`` and SIGKILL this very process at an exact write: a crash at the worst moment, on demand.

    python kill_at.py NAME N WHEN -- ARGS...

Every file vptlab writes goes through ``os.replace`` (temporary file, then rename).  At the Nth rename onto a
file called NAME this process kills itself with SIGKILL:

* ``WHEN=torn``: before the rename, after cutting the temporary file in half: the state a crash in the middle of
  writing leaves (the torn bytes exist only under the temporary name, never as NAME);
* ``WHEN=after``: right after the rename, before the caller does anything else with it (e.g. a study that has
  just recorded its last tune result and is about to select);
* ``WHEN=pause:RELEASE``: no kill; before the rename, create ``RELEASE.paused`` and wait until ``RELEASE``
  exists, then go on (a process held busy at a known point, e.g. while it holds a study's lock).

If a kill point never comes, the command runs to its end and the exit status says so (3).  A test helper, not
library code: the library has no hook for this.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def _pause(release: Path) -> None:
    Path(f"{release}.paused").touch()
    while not release.exists():
        time.sleep(0.05)


def _install(name: str, nth: int, when: str) -> None:
    real_replace = os.replace
    seen = 0

    def replace(src, dst, *args, **kwargs):
        nonlocal seen
        hit = Path(dst).name == name and (seen := seen + 1) == nth
        if hit and when == "torn":
            data = Path(src).read_bytes()
            Path(src).write_bytes(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        if hit and when.startswith("pause:"):
            _pause(Path(when.partition(":")[2]))
        real_replace(src, dst, *args, **kwargs)
        if hit and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace


def main() -> int:
    name, nth, when, sep, *argv = sys.argv[1:]
    assert sep == "--" and (when in ("torn", "after") or when.startswith("pause:")), sys.argv
    _install(name, int(nth), when)
    from vptlab.cli import main as vptlab_main

    code = vptlab_main(argv)
    kills = when in ("torn", "after")
    return 3 if kills and code == 0 else code  # a kill mode that reaches the end never met its point


if __name__ == "__main__":
    sys.exit(main())
