"""Studies: a spec (TOML/YAML) -> run lists -> tune, select, final seeds, on a local machine or a Ray cluster.

The three lines a Python user needs::

    from vptlab.study import load_spec, run_study
    record = run_study(load_spec("studies/demo.toml"), "demo-out")
    print(record.table)

Names are imported on first use, so ``import vptlab.study`` stays light.
"""

from __future__ import annotations

from vptlab._lazy import lazy_getattr

_EXPORTS = {
    "StudySpec": "vptlab.study.spec",
    "load_spec": "vptlab.study.spec",
    "parse_spec": "vptlab.study.spec",
    "run_study": "vptlab.study.runner",
    "check_backbone": "vptlab.study.runner",
    "check_data": "vptlab.study.runner",
    "plan_groups": "vptlab.study.overview",
    "plan_report": "vptlab.study.planview",
    "select_best": "vptlab.study.select",
    "study_state": "vptlab.study.state",
    "study_table": "vptlab.study.results",
    "RunOptions": "vptlab.study.worker",
    "WorkerOptions": "vptlab.study.worker",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr("vptlab.study", _EXPORTS)
