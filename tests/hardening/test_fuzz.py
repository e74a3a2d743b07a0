"""Property tests of the two parsers that read what users write: split files and study specs.

Whatever the text, a parser either returns a result or raises :class:`UserError` with one line naming the file
and line (split files) or the file and key (specs); never another exception.  Bounded to a few seconds.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vptlab.data.images import raise_problems, read_list_file
from vptlab.errors import UserError
from vptlab.study.spec import parse_spec, spec_from_dict, spec_to_dict

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NUM_CLASSES = 4

# --- split files -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def task_folder() -> Path:
    """A task folder with two images, a sub-folder, and a symlink that leads outside it."""
    top = Path(tempfile.mkdtemp(prefix="fuzz-split-"))
    folder = top / "task"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png", "../outside.png"):
        (folder / name).write_bytes(b"png")
    os.symlink(top / "outside.png", folder / "link.png")
    return folder


_paths = st.sampled_from(["a.png", "sub/b.png", "./a.png", "sub/../a.png", "../outside.png", "link.png",
                          "/etc/hostname", "missing.png", "sub", "", "a b.png", "a\0.png", "a\tb.png",
                          "caf\u00e9.png", "x\u2028y.png"])  # fmt: skip
_labels = st.one_of(
    st.integers(-3, 6).map(str),
    st.sampled_from(["1.5", "1e3", "+2", "-0", "0x1", "\u0663", "1_0", "9" * 30, "", "nan", "label"]),
)
_seps = st.sampled_from([" ", "\t", "  ", " \t ", "\u00a0", "\x0c"])
_line = st.one_of(
    st.tuples(_paths, _seps, _labels).map("".join),
    st.text(max_size=30),
)


def _parse(folder: Path, data: bytes):
    path = folder / "train800.txt"
    path.write_bytes(data)
    return path, read_list_file(path, folder, num_classes=NUM_CLASSES, confine=True)


def _check_problems(path: Path, text: str, problems: list[str]) -> None:
    """Each problem is one line, ``file[:line]: ...``, with a line number as an editor counts lines."""
    line_count = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    for problem in problems:
        assert "\n" not in problem and "\r" not in problem and "\u2028" not in problem
        where = re.match(rf"{re.escape(str(path))}(?::(\d+))?: ", problem)
        assert where, problem
        if where.group(1):
            assert 1 <= int(where.group(1)) <= line_count


def _check_entries(folder: Path, lst) -> None:
    inside = os.path.join(os.path.realpath(folder), "")
    assert all(f.startswith(inside) and os.path.isfile(f) for f in lst.files)
    assert all(0 <= y < NUM_CLASSES for y in lst.labels.tolist())


@FUZZ
@given(st.lists(_line, max_size=8), st.sampled_from(["\n", "\r\n"]))
def test_any_split_file_parses_or_names_its_file_and_line(task_folder, lines, newline):
    text = newline.join(lines)
    path, (lst, problems) = _parse(task_folder, text.encode("utf-8"))
    _check_problems(path, text, problems)
    _check_entries(task_folder, lst)
    try:
        raise_problems(problems)
    except UserError as err:
        assert str(err).startswith(f"{path}") and "\n" not in str(err)


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_as_a_split_file_never_crash_the_parser(task_folder, data):
    path, (lst, problems) = _parse(task_folder, data)
    _check_problems(path, data.decode("utf-8", errors="replace"), problems)
    _check_entries(task_folder, lst)


# --- study specs -------------------------------------------------------------------------------------------------

# Keys from the real schema (and a few near misses), so examples reach deep into the validator.
SECTION_KEYS = {
    "backbone": ["name", "checkpoint", "image_size", "interpolation", "pretrained", "kwargs", "size"],
    "data": ["source", "tasks", "split_seed", "skip_bad_images", "task"],
    "training": ["epochs", "warmup_epochs", "schedule", "eval_test_every", "precision", "seeds", "tune_seed",
                 "reference_optimizer", "epoch"],
    "regimes": ["standard", "kshot", "size", "shots"],
    "tune": ["early_stopping", "eta", "min_epochs", "single_point", "rungs"],
    "executor": ["kind", "workers", "address", "device", "cpus_per_run", "gpus_per_run", "gpus"],
}  # fmt: skip
METHODS = ["full", "vpt-deep", "vpt-shallow", "linear", "mixed", "ft-then-pt", "lora", "bias", "magic"]
OPTIONS = [
    "lr",
    "wd",
    "batch_size",
    "prompt_length",
    "prompt_dropout",
    "lora_rank",
    "ft_lr",
    "ft_wd",
    "tasks",
]
TASKS = ["fractal", "shapes", "count", "cifar", "nope"]

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["all", "step", "sha", "cpu", "cuda:0", "synthetic", "vtab1k:/x", "folder:/x", "1e-3", ""]
    ),
    st.text(max_size=6),
)
_value = st.one_of(_scalar, st.lists(_scalar, max_size=3))


def _table(keys: list[str], values=_value):
    return st.dictionaries(st.sampled_from(keys), values, max_size=4)


_method = _table(OPTIONS[:-1]) | st.fixed_dictionaries({"tasks": st.dictionaries(st.sampled_from(TASKS),
                                                                                  _table(OPTIONS[:-1]), max_size=2)})  # fmt: skip
_spec = st.fixed_dictionaries(
    {"methods": st.dictionaries(st.sampled_from(METHODS), _method, max_size=3) | _value},
    optional={
        **{section: _table(keys) | _value for section, keys in SECTION_KEYS.items()},
        "task_options": st.dictionaries(st.sampled_from(TASKS), _table(OPTIONS), max_size=2),
        "name": _value,
        "extra": _value,
    },
)


@FUZZ
@given(_spec)
def test_any_schema_shaped_spec_is_a_spec_or_names_the_key(data):
    try:
        spec = spec_from_dict(data, "fuzz.toml")
    except UserError as err:
        message = str(err)
        assert message.startswith("fuzz.toml: ") and "\n" not in message, message
        return
    assert spec_from_dict(spec_to_dict(spec), "again") == spec  # what study.json keeps reads back the same


def _spec_or_one_line(text: str, yaml_format: bool) -> None:
    name = "fuzz.yaml" if yaml_format else "fuzz.toml"
    try:
        parse_spec(text, name, yaml_format=yaml_format)
    except UserError as err:
        assert str(err).startswith(f"{name}: ") and "\n" not in str(err), str(err)


@FUZZ
@given(st.text(max_size=120), st.booleans())
def test_any_text_is_a_spec_or_a_one_line_error(text, yaml_format):
    _spec_or_one_line(text, yaml_format)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([*SECTION_KEYS, "methods.full", "methods.vpt-deep", "tune"]),
                          st.sampled_from(sum(SECTION_KEYS.values(), []) + OPTIONS),
                          st.sampled_from(["1", "-1", "0", "1.5", "'x'", "[]", "[1, 2]", "true", "nan", "inf"])),
                max_size=5))  # fmt: skip
def test_any_toml_with_real_sections_and_keys_is_a_spec_or_names_the_key(entries):
    sections: dict[str, list[str]] = {}
    for section, key, value in entries:
        sections.setdefault(section, []).append(f"{key} = {value}")
    text = "".join(f"[{s}]\n" + "\n".join(dict.fromkeys(lines)) + "\n" for s, lines in sections.items())
    _spec_or_one_line(text, yaml_format=False)
