"""Run ``vptlab ARGS`` and SIGKILL this very process at an exact write: a crash at the worst moment, on demand.

    python kill_at.py NAME N WHEN -- ARGS...

Every file vptlab writes goes through ``os.replace`` (temporary file, then rename).  At the Nth rename onto a
file called NAME this process kills itself with SIGKILL:

* ``WHEN=torn``: before the rename, after cutting the temporary file in half: the state a crash in the middle of
  writing leaves (the torn bytes exist only under the temporary name, never as NAME);
* ``WHEN=after``: right after the rename, before the caller does anything else with it (e.g. a study that has
  just recorded its last tune result and is about to select).

If the Nth rename never comes, the command runs to its end and the exit status says so (3).  A test helper, not
library code: the library has no hook for this.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def _install(name: str, nth: int, when: str) -> None:
    real_replace = os.replace
    seen = 0

    def replace(src, dst, *args, **kwargs):
        nonlocal seen
        if Path(dst).name == name:
            seen += 1
            if seen == nth and when == "torn":
                data = Path(src).read_bytes()
                Path(src).write_bytes(data[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst, *args, **kwargs)
        if Path(dst).name == name and seen == nth and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace


def main() -> int:
    name, nth, when, sep, *argv = sys.argv[1:]
    assert sep == "--" and when in ("torn", "after"), sys.argv
    _install(name, int(nth), when)
    from vptlab.cli import main as vptlab_main

    code = vptlab_main(argv)
    return 3 if code == 0 else code  # reaching the end means the kill point was never met


if __name__ == "__main__":
    sys.exit(main())
