"""``vptlab data check`` for every benchmark layout: one report type, dispatched on the source's form."""

from __future__ import annotations

from vptlab.data.vtab1k import CheckReport


def check_source(source: str, task: str | None = None, *, images: bool = True) -> CheckReport:
    """Check a VTAB-1k root (a bare path or ``vtab1k:ROOT``), ``fgvc:ROOT``, ``fewshot:ROOT`` or
    ``imagenet-variants:ROOT``; every problem is collected, none raised."""
    kind, sep, rest = str(source).partition(":")
    if sep and kind == "fgvc":
        from vptlab.data import fgvc

        return fgvc.check_root(rest.partition("?")[0], task, images=images)
    if sep and kind == "fewshot":
        from vptlab.data import fewshot

        return fewshot.check_root(rest, task, images=images)
    if sep and kind == "imagenet-variants":
        from vptlab.data import evalsets

        return evalsets.check_root(rest, task, images=images)
    from vptlab.data import vtab1k

    return vtab1k.check_root(rest if sep and kind == "vtab1k" else source, task, images=images)
