"""Files from other people are data, never code: weights, specs, split files and caches.

A file that would run code when unpickled is refused without running it; split-file paths and symlinks stay
inside the task folder; YAML tags that construct Python objects are refused; the decoded-image cache holds plain
arrays only.  The last test reads the code base itself, so a later unsafe load cannot slip in unnoticed.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hardhelpers import VTAB_TASK, write_vtab

from vptlab.backbones import create_backbone
from vptlab.data import load_task
from vptlab.errors import UserError
from vptlab.study.spec import parse_spec

SRC = Path(__file__).resolve().parents[2] / "src" / "vptlab"


class _Payload:
    """Unpickling this creates ``flag``: a stand-in for any code an attacker would run."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag

    def __reduce__(self):
        return (os.mkdir, (str(self.flag),))


# --- weights ---------------------------------------------------------------------------------------------------


def _backbone_checkpoint(path: Path) -> None:
    create_backbone("vptlab-tiny", num_classes=2, pretrained=False, checkpoint=path, depth=1)


def _run_checkpoint(path: Path, tiny_cfg, toy_task) -> dict:
    """A run folder someone else left, whose resumable checkpoint.pt carries code."""
    from vptlab.train import train_run

    os.replace(path, path.parent / "checkpoint.pt")
    return train_run(
        tiny_cfg("linear", epochs=1, warmup_epochs=0), path.parent, task_data=toy_task, device="cpu"
    )


def test_a_backbone_checkpoint_carrying_code_is_refused_unrun(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _Payload(tmp_path / "ran")}, tmp_path / "w.pth")
    with pytest.raises(UserError, match="w.pth: refused by the weights-only loader.*GLOBAL posix.mkdir"):
        _backbone_checkpoint(tmp_path / "w.pth")
    assert not (tmp_path / "ran").exists()


def test_a_run_checkpoint_carrying_code_is_never_run_and_the_run_starts_over(tmp_path, tiny_cfg, toy_task):
    torch.save({"run_id": "x", "params": _Payload(tmp_path / "ran")}, tmp_path / "evil.pt")
    result = _run_checkpoint(tmp_path / "evil.pt", tiny_cfg, toy_task)
    assert not (tmp_path / "ran").exists()
    # the weights-only loader refuses it; the checkpoint is discarded and the run trains from epoch 0
    assert result["status"] == "ok" and result["epochs_done"] == 1
    assert not (tmp_path / "checkpoint.pt").exists()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0]


def test_fid_inception_weights_carrying_code_are_refused_unrun(tmp_path):
    pytest.importorskip("pytorch_fid")
    from vptlab.analysis.fid_features import _build_inception

    torch.save({"x": _Payload(tmp_path / "ran")}, tmp_path / "inception.pth")
    with pytest.raises(UserError, match="inception.pth: refused by the weights-only loader"):
        _build_inception(tmp_path / "inception.pth")
    assert not (tmp_path / "ran").exists()


# --- specs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.mkdir ['{flag}']",
        "!!python/object/new:os.mkdir ['{flag}']",
        "!!python/name:os.mkdir",
        "!!python/module:os",
        "!!python/object:pathlib.Path {{}}",
    ],
)
def test_yaml_tags_that_build_python_objects_are_refused(tmp_path, tag):
    text = f"name: {tag.format(flag=tmp_path / 'ran')}\nmethods: {{full: {{}}}}\n"
    with pytest.raises(UserError, match="s.yaml: not valid YAML"):
        parse_spec(text, "s.yaml", yaml_format=True)
    assert not (tmp_path / "ran").exists()


# --- split files -----------------------------------------------------------------------------------------------


def _load(root: Path, cache: Path):
    return load_task(f"vtab1k:{root}", VTAB_TASK, image_size=8, cache_dir=cache)


def test_a_symlinked_folder_inside_the_task_cannot_lead_outside_it(tmp_path):
    folder = write_vtab(tmp_path / "vtab")
    os.replace(folder / "images" / "val200", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", folder / "images" / "val200")
    with pytest.raises(UserError, match=r"val200.txt:1: path 'images/val200/0.png' leaves the task folder"):
        _load(folder.parent, tmp_path / "cache")


def test_symlinks_that_stay_inside_and_a_symlinked_root_are_fine(tmp_path):
    folder = write_vtab(tmp_path / "real" / "vtab")
    os.replace(folder / "images" / "test", folder / "images" / "moved")
    os.symlink("moved", folder / "images" / "test")  # relative link, inside the task folder
    os.symlink(tmp_path / "real" / "vtab", tmp_path / "linked")  # the whole root reached through a link
    data = _load(tmp_path / "linked", tmp_path / "cache")
    assert len(data.test) == 4


# --- the cache ---------------------------------------------------------------------------------------------------


def _cached_arrays(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.npy"))


def test_the_cache_holds_plain_arrays_and_never_unpickles_a_planted_file(tmp_path):
    folder = write_vtab(tmp_path / "vtab")
    _load(folder.parent, tmp_path / "cache")
    arrays = _cached_arrays(tmp_path / "cache")
    assert arrays and all(np.load(p, allow_pickle=False).dtype != object for p in arrays)
    assert {p.suffix for p in (tmp_path / "cache").rglob("*") if p.is_file()} <= {
        ".npy",
        ".json",
        ".lock",
        ".txt",
    }
    labels = next(p for p in arrays if p.name.endswith(".labels.npy"))
    np.save(labels, np.array([_Payload(tmp_path / "ran")], dtype=object), allow_pickle=True)
    data = _load(folder.parent, tmp_path / "cache")  # the entry is unreadable as plain arrays: rebuilt
    assert not (tmp_path / "ran").exists() and data.train.labels.dtype == np.int64
    assert np.load(labels, allow_pickle=False).dtype == np.int64


# --- the code base -----------------------------------------------------------------------------------------------

FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_ATTRS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("yaml", "load"),
                   ("yaml", "unsafe_load"), ("yaml", "full_load"), ("marshal", "loads"), ("shelve", "open")}  # fmt: skip
# torch < 2.6 (allowed by pyproject) unpickles anything unless told weights_only=True; numpy (>= 1.16.3) refuses
# pickles unless told allow_pickle=True, so there only an explicit True (or a non-constant) is unsafe.
SAFE_KEYWORDS = {("torch", "load"): ("weights_only", True, False), ("np", "load"): ("allow_pickle", False, False),
                 ("numpy", "load"): ("allow_pickle", False, False)}  # fmt: skip


def _unsafe_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        where = f"{path.relative_to(SRC.parent)}:{node.lineno}"
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
            found.append(f"{where}: {func.id}()")
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            pair = (func.value.id, func.attr)
            if pair in FORBIDDEN_ATTRS:
                found.append(f"{where}: {'.'.join(pair)}()")
            if pair in SAFE_KEYWORDS:
                name, safe, default = SAFE_KEYWORDS[pair]
                given = {k.arg: getattr(k.value, "value", k.value) for k in node.keywords}
                if given.get(name, default) is not safe:
                    found.append(f"{where}: {'.'.join(pair)}() without {name}={safe}")
    return found


def test_the_code_base_loads_only_data():
    unsafe = [hit for path in sorted(SRC.rglob("*.py")) for hit in _unsafe_calls(path)]
    assert unsafe == []
