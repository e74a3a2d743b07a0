"""Tuning methods, one module each, found by name through the registry (and the ``vptlab.methods`` plugins)."""

from vptlab.methods.base import (
    FT_GRID,
    PROMPT_GRID,
    FirstStage,
    Method,
    MethodConfig,
    NoOptions,
    get_method,
    list_methods,
    method_names,
    option,
    register,
)

__all__ = [
    "FT_GRID",
    "PROMPT_GRID",
    "FirstStage",
    "Method",
    "MethodConfig",
    "NoOptions",
    "get_method",
    "list_methods",
    "method_names",
    "option",
    "register",
]
