"""Data: VTAB-1k folders, your own image folders, split regimes, the decoded-image cache, synthetic tasks."""

from vptlab.data.base import IMAGENET_MEAN, IMAGENET_STD, ImageSet, TaskData, TaskInfo, to_tensor

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageSet", "TaskData", "TaskInfo", "to_tensor"]
