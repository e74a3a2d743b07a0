"""Figures without pyplot: a ``Figure`` on an Agg canvas, so plotting never touches global GUI state."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FT_COLOR = "#d95f02"
VPT_COLOR = "#1b9e77"
TIE_COLOR = "#999999"
WINNER_COLORS = {"FT": FT_COLOR, "VPT": VPT_COLOR, "tie": TIE_COLOR}
METHOD_COLORS = {
    "full": FT_COLOR,
    "vpt-deep": VPT_COLOR,
    "vpt-shallow": "#66a61e",
    "mixed": "#7570b3",
    "ft-then-pt": "#e7298a",
    "linear": "#a6761d",
    "bias": "#666666",
    "lora": "#e6ab02",
}


def method_color(method: str, default: str = "black") -> str:
    """A method's colour in figures: the paper's methods above, else the colour its module registers."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    from vptlab.errors import UserError
    from vptlab.methods import get_method

    try:
        return get_method(method).color or default
    except UserError:
        return default


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
