"""From a tuned run to use: load it as a classifier, predict on new images, export it as one model file.

Names are imported on first use (``vptlab.deploy`` stays cheap to import for the CLI).
"""

from __future__ import annotations

from vptlab._lazy import lazy_getattr

_EXPORTS = {
    "Preprocess": "vptlab.deploy.tuned",
    "TunedModel": "vptlab.deploy.tuned",
    "load_tuned": "vptlab.deploy.tuned",
    "collect_images": "vptlab.deploy.predict",
    "predict_to_csv": "vptlab.deploy.predict",
    "export_run": "vptlab.deploy.export",
    "load_exported": "vptlab.deploy.export",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr("vptlab.deploy", _EXPORTS)
