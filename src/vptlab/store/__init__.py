"""Run records on disk: one folder per run, written atomically, and readers for them."""

from vptlab.store.runs import load_result, load_results

__all__ = ["load_result", "load_results"]
