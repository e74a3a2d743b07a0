"""Data: VTAB-1k folders, your own image folders, split regimes, the decoded-image cache, synthetic tasks."""

from vptlab.data.base import IMAGENET_MEAN, IMAGENET_STD, ImageSet, TaskData, TaskInfo, to_tensor
from vptlab.data.sources import list_tasks, load_task, parse_source, with_normalization

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageSet",
    "TaskData",
    "TaskInfo",
    "list_tasks",
    "load_task",
    "parse_source",
    "to_tensor",
    "with_normalization",
]
