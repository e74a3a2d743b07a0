"""Executors: where a study's runs train.  ``local`` (in-process or a process pool) and ``ray`` (a cluster).

An executor takes :class:`vptlab.study.state.Job` objects (``submit``) and hands back finished ones
(``wait``); the driver alone writes the study folder's index, and with Ray also the run folders.
"""

from vptlab.study.executors.base import Executor, Outcome, make_executor

__all__ = ["Executor", "Outcome", "make_executor"]
