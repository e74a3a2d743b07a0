"""``vptlab study results``: a study folder's runs as a tidy table, and a short overview of them."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from vptlab.store.index import RunIndex
from vptlab.store.lock import StudyLock
from vptlab.store.runs import study_results
from vptlab.store.study import SUMMARY_FILE, StudyStore
from vptlab.store.table import tidy_rows, to_csv, write_csv
from vptlab.study.summary import summary_table


def study_table(out: str | Path) -> list[dict]:
    """One tidy row per run of the study in ``out`` (read from the run folders, the truth)."""
    return tidy_rows(list(study_results(out).values()))


def rebuild_index(out: str | Path) -> int:
    """Rebuild ``index.sqlite`` from the run folders (takes the study lock: not while a study runs)."""
    with StudyLock(out), RunIndex(out) as index:
        return index.rebuild()


def results_report(out: str | Path, csv: str | None = None, rebuild: bool = False) -> str:
    """Counts by stage, method and status, the last summary table, and the CSV when asked for."""
    out = Path(out)
    lines = []
    if rebuild:
        lines.append(f"index rebuilt: {rebuild_index(out)} runs")
    rows = study_table(out)
    if csv == "-":
        sys.stdout.write(to_csv(rows))
    elif csv:
        write_csv(rows, csv)
        lines.append(f"wrote {len(rows)} rows to {csv}")
    counts = Counter((r["stage"], r["method"], r["status"]) for r in rows)
    lines.append(f"{len(rows)} runs in {out}")
    for (stage, method, status), n in sorted(counts.items(), key=lambda kv: tuple(map(str, kv[0]))):
        lines.append(f"  {stage:<6} {method:<12} {status:<9} {n}")
    summary = StudyStore(out).read_json(SUMMARY_FILE)
    if summary:
        lines += ["", summary_table(summary)]
    return "\n".join(lines) + "\n"
