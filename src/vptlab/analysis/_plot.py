"""Figures without pyplot: a ``Figure`` on an Agg canvas, so plotting never touches global GUI state."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FT_COLOR = "#d95f02"
VPT_COLOR = "#1b9e77"
TIE_COLOR = "#999999"
WINNER_COLORS = {"FT": FT_COLOR, "VPT": VPT_COLOR, "tie": TIE_COLOR}


def method_color(method: str) -> str:
    """The method's colour in figures (``Method.color``)."""
    from vptlab.methods.base import method_color as color

    return color(method)


def new_figure(width: float, height: float) -> Figure:
    """An empty figure rendered by Agg (no display needed)."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
