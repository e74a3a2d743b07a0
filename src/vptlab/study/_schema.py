"""Reading one table of a study spec with errors that name the key.

A spec is TOML or YAML, i.e. nested dicts of plain values.  :class:`Table` hands out values one key at a time,
checks their type, and at the end reports any key nobody asked for, with the list of valid ones: a typo such as
``epoch = 100`` fails loudly instead of silently running the default.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from vptlab.errors import UserError

_MISSING = object()
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class Table:
    """One table of a spec: ``file: a.b.key: message`` errors and unknown-key detection."""

    def __init__(self, data: Any, file: str, path: str = "", yaml: bool = False) -> None:
        self.file, self.path, self.yaml = file, path, yaml
        if not isinstance(data, dict):
            self.fail("", f"must be a table, got {_kind(data)}")
        self.data: dict[str, Any] = data
        self.used: list[str] = []

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, message: str) -> None:
        where = self.key(key) if key else (self.path or "top level")
        raise UserError(f"{self.file}: {where}: {message}")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        """The value at ``key`` unchecked (marks it used)."""
        self.used.append(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            self.fail(key, "missing (required)")
        return default

    def sub(self, key: str, required: bool = False) -> Table:
        """The sub-table at ``key`` (an empty one if absent and not required)."""
        value = self.raw(key, _MISSING if required else {})
        return Table(value, self.file, self.key(key), self.yaml)

    def get(
        self, key: str, kind: str, default: Any = _MISSING, check: Callable[[Any], str | None] | None = None
    ):
        """The value at ``key`` as ``kind`` (str, int, float, bool); ``check`` returns an error or None."""
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        return self.convert(key, value, kind, check)

    def get_list(
        self,
        key: str,
        kind: str,
        default: Any = _MISSING,
        check=None,
        scalar_ok: bool = False,
        allow_empty: bool = False,
    ):
        """A list of ``kind`` at ``key`` (a single value too when ``scalar_ok``), as a tuple."""
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, list):
            if scalar_ok:
                return (self.convert(key, value, kind, check),)
            self.fail(key, f"must be a list of {kind}, got {_kind(value)} {value!r}")
        if not value and not allow_empty:
            self.fail(key, "must not be empty")
        return tuple(self.convert(f"{key}[{i}]", v, kind, check) for i, v in enumerate(value))

    def convert(self, key: str, value: Any, kind: str, check=None) -> Any:
        out = self._as(key, value, kind)
        problem = check(out) if check else None
        if problem:
            self.fail(key, f"{problem}, got {value!r}")
        return out

    def _as(self, key: str, value: Any, kind: str) -> Any:
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "str" and isinstance(value, str):
            return value
        if kind in ("int", "float") and isinstance(value, str) and self.yaml and _NUMBER.match(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-3 as a string
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "int" and is_number and float(value).is_integer():
            return int(value)
        if kind == "float" and is_number:
            if math.isfinite(value):
                return float(value)
            self.fail(key, f"must be a finite number, got {value!r}")
        self.fail(key, f"must be {_article(kind)}, got {_kind(value)} {value!r}")

    def reject_unknown(self, valid: tuple[str, ...]) -> None:
        """Fail on the first key not in ``valid`` before reading anything (a misspelled section name)."""
        unknown = [k for k in self.data if k not in valid]
        if unknown:
            self.fail(unknown[0], f"unknown key; valid keys here: {', '.join(sorted(valid))}")

    def done(self) -> None:
        """Reject keys that were never asked for, naming the valid ones."""
        unknown = [k for k in self.data if k not in self.used]
        if unknown:
            valid = ", ".join(sorted(set(self.used))) or "(none)"
            self.fail(unknown[0], f"unknown key; valid keys here: {valid}")


def positive(value: float) -> str | None:
    return None if value > 0 else "must be > 0"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else "must be >= 0"


def at_least(bound: int) -> Callable[[float], str | None]:
    return lambda value: None if value >= bound else f"must be >= {bound}"


def one_of(*choices: str) -> Callable[[str], str | None]:
    return lambda value: None if value in choices else f"must be one of {', '.join(map(repr, choices))}"


def _kind(value: Any) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def _article(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}.get(
        kind, kind
    )
