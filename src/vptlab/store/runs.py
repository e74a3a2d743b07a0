"""Reading finished runs.

A run folder holds ``result.json`` (written last, atomically), ``metrics.jsonl`` and the tuned weights.  A folder
without ``result.json``, or with one that does not parse, is unfinished and never read as a result.
"""

from __future__ import annotations

import json
from pathlib import Path


def load_result(run_dir: str | Path) -> dict | None:
    """The run's ``result.json`` with ``run_dir`` added, or ``None`` if the run has not finished."""
    path = Path(run_dir) / "result.json"
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    result["run_dir"] = str(Path(run_dir))
    return result


def load_results(root: str | Path) -> list[dict]:
    """Every finished run under ``root``: a study folder (``runs/*/``), a folder of runs, or one run folder."""
    root = Path(root)
    single = load_result(root)
    if single is not None:
        return [single]
    results = []
    for result_file in sorted(root.rglob("result.json")):
        result = load_result(result_file.parent)
        if result is not None:
            results.append(result)
    return results
