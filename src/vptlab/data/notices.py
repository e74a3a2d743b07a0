"""Telling the user about files that were not used: on the console (first few) and in a file (all of them).

Every command that reads images calls :func:`announce` with what it left out; the console shows the first
:data:`SHOWN` entries, then ``and N more, listed in FILE``, where FILE (under the cache folder, named by a hash of
the list) holds every entry.  A run also records the full list in its ``result.json`` (``data.dropped_files``).
The same list is shown once per process, however many times a study loads the same task.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from vptlab._io import atomic_write_text, stable_hash

SHOWN = 5
_announced: set[str] = set()


def announce(
    headline: str,
    items: list[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    stream: TextIO | None = None,
    once: bool = True,
) -> Path | None:
    """Print ``vptlab: note: <headline> (<count>):`` and the first items; return the file listing all of them."""
    if not items:
        return None
    key = stable_hash({"headline": headline, "items": items}, 16)
    if once and key in _announced:
        return None
    _announced.add(key)
    listing = None
    lines = [f"vptlab: note: {headline} ({len(items)}):"] + [f"  {item}" for item in items[:SHOWN]]
    if len(items) > SHOWN:
        listing = list_file(items, key, cache_dir)
        lines.append(f"  ... and {len(items) - SHOWN} more, listed in {listing}")
    (stream or sys.stderr).write("\n".join(lines) + "\n")
    return listing


def reset() -> None:
    """Forget what was shown: the next command (one ``vptlab`` invocation) shows its notes again."""
    _announced.clear()


def list_file(items: list[str], key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Write ``items`` one per line to ``<cache>/notes/<key>.txt`` (once) and return the path."""
    from vptlab.data.cache import cache_root

    path = cache_root(cache_dir) / "notes" / f"{key}.txt"
    if not path.is_file():
        atomic_write_text(path, "".join(f"{item}\n" for item in items))
    return path


def write_dropped_file(out_dir: str | os.PathLike, items: list[str], name: str = "dropped-files.txt") -> Path:
    """The full list in a run folder, beside ``result.json``."""
    path = Path(out_dir) / name
    atomic_write_text(path, "".join(f"{item}\n" for item in items))
    return path
