"""Tuning methods, one module each, found by name through the registry."""

from vptlab.methods.base import FT_GRID, PROMPT_GRID, Method, get_method, list_methods, method_names

__all__ = ["FT_GRID", "PROMPT_GRID", "Method", "get_method", "list_methods", "method_names"]
