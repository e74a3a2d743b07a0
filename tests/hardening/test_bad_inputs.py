"""The bad-input battery: malformed data, checkpoints, specs and arguments, each met through the real CLI.

Every case must end with exit status 2 and exactly one stderr line that names the file (and line) or the key at
fault, with no traceback and nothing written that could be read as a result.  Each case runs in-process through
``vptlab.cli.main`` (fast); a representative subset also runs as ``python -m vptlab`` in a subprocess, which is
what a user's terminal shows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hardhelpers import (
    TINY_TRAIN,
    VTAB_TASK,
    assert_one_clear_line,
    run_in_process,
    run_subprocess,
    tiny_study,
    write_class_folders,
    write_vtab,
    written_results,
)
from safetensors.torch import save_file

from vptlab.backbones import create_backbone

SENTINEL = "pickled-code-ran"
LINEAR = "[methods.linear]\nlr = [0.1]\nwd = [0.0]\nbatch_size = 16\n"


@dataclass
class Shared:
    folder: Path  # an image-folder task "colours"
    state: dict[str, torch.Tensor]  # weights of the tiny backbone the CLI builds with TINY_TRAIN


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Shared:
    root = tmp_path_factory.mktemp("shared")
    model = create_backbone("vptlab-tiny", num_classes=3, pretrained=False, image_size=16, depth=1,
                            embed_dim=32, num_heads=2, patch_size=8)  # fmt: skip
    return Shared(
        write_class_folders(root / "colours"), {k: v.contiguous() for k, v in model.state_dict().items()}
    )


class World:
    """One case's folder: builders for the bad inputs and the argv that feeds them to the CLI."""

    def __init__(self, tmp: Path, shared: Shared) -> None:
        self.tmp, self.shared, self.out = tmp, shared, tmp / "out"
        tmp.mkdir(parents=True, exist_ok=True)

    # data
    def vtab(self, edit: Callable[[Path], object] | None = None) -> Path:
        folder = write_vtab(self.tmp / "vtab")
        if edit is not None:
            edit(folder)
        return folder.parent

    def prepare(self, root: Path, *extra: str) -> list:
        return ["data", "prepare", f"vtab1k:{root}", "--image-size", "16", *extra]

    def train_vtab(self, root: Path, *extra: str) -> list:
        # the tune stage reads train800.txt and val200.txt, where most of these inputs are broken
        return ["train", "--method", "linear", "--data", f"vtab1k:{root}", "--task", VTAB_TASK, "--stage", "tune",
                "--out", self.out, *TINY_TRAIN, *extra]  # fmt: skip

    def train(self, *extra: str) -> list:
        return ["train", "--method", "linear", "--data", f"folder:{self.shared.folder}", "--task", "colours",
                "--out", self.out, *TINY_TRAIN, *extra]  # fmt: skip

    # checkpoints
    def ckpt(self, name: str, write: Callable[[Path, dict], object]) -> list:
        path = self.tmp / name
        write(path, dict(self.shared.state))
        return self.train("--checkpoint", path)

    # study specs
    def study(self, text: str | bytes, name: str = "bad.toml") -> list:
        path = self.tmp / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["study", "run", path, "--out", self.out, "--device", "cpu"]

    def spec(self, methods: str = LINEAR, replace: tuple[str, str] = ("", "")) -> str:
        """A valid tiny study spec on the shared folder, with one ``(old, new)`` text replacement."""
        text = tiny_study(f"folder:{self.shared.folder}", methods)
        assert replace[0] in text, replace
        return text.replace(*replace, 1) if replace[0] else text


# --- builders for damaged files ------------------------------------------------------------------------------


def append(split: str, line: str) -> Callable[[Path], None]:
    """Add ``line`` to a split file (train800.txt has 8 lines, so it becomes line 9)."""

    def edit(folder: Path) -> None:
        with (folder / f"{split}.txt").open("a") as fh:
            fh.write(line + "\n")

    return edit


def replace_file(rel: str, data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / rel).write_bytes(data)


def truncate(rel: str) -> Callable[[Path], None]:
    return lambda folder: (folder / rel).write_bytes((folder / rel).read_bytes()[:60])


def symlink_out(folder: Path) -> None:
    target = folder.parent.parent / "outside.png"
    target.write_bytes((folder / "images/train800/3.png").read_bytes())
    (folder / "images/train800/3.png").unlink()
    os.symlink(target, folder / "images/train800/3.png")


def safetensors_with(**changes) -> Callable[[Path, dict], None]:
    def write(path: Path, state: dict) -> None:
        for name, value in changes.items():
            name = name.replace("__", ".")
            if value is None:
                del state[name]
            else:
                state[name] = value(state[name])
        save_file(state, str(path))

    return write


def cut_half(save: Callable[[Path, dict], object]) -> Callable[[Path, dict], None]:
    def write(path: Path, state: dict) -> None:
        save(path, state)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return write


class _Code:
    """A pickle that would run code when loaded unsafely: it must be refused, never executed."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag

    def __reduce__(self):
        return (os.mkdir, (str(self.flag),))


def pickle_with_code(path: Path, state: dict) -> None:
    torch.save({"state_dict": state, "hook": _Code(path.parent / SENTINEL)}, path)


# --- the table -----------------------------------------------------------------------------------------------

NAN = float("nan")
CASES: dict[str, tuple[Callable[[World], list], tuple[str, ...]]] = {
    # VTAB-1k folders and split files
    "vtab root missing": (lambda w: w.prepare(w.tmp / "nowhere"), ("VTAB-1k root", "nowhere", "not found")),
    "task folder missing": (lambda w: w.train_vtab(w.vtab(), "--task", "dtd"), ("dtd", "not found", "kitti")),
    "split file missing": (lambda w: w.prepare(w.vtab(lambda f: (f / "val200.txt").unlink())),
                           ("kitti/val200.txt: split file not found",)),
    "empty split file": (lambda w: w.prepare(w.vtab(replace_file("val200.txt", b""))),
                         ("val200.txt: no entries",)),
    "binary split file": (lambda w: w.prepare(w.vtab(replace_file("val200.txt", bytes(range(256)) * 3))),
                          ("val200.txt:1: expected 'relative/path label'",)),
    "line without label": (lambda w: w.prepare(w.vtab(append("train800", "images/train800/0.png"))),
                           ("train800.txt:9: expected 'relative/path label' with an integer label",)),
    "float label": (lambda w: w.prepare(w.vtab(append("train800", "images/train800/0.png 1.5"))),
                    ("train800.txt:9:", "integer label")),
    "non-ASCII digit label": (lambda w: w.prepare(w.vtab(append("train800", "images/train800/0.png \u0663"))),
                              ("train800.txt:9:", "integer label")),
    "label above the class count": (lambda w: w.prepare(w.vtab(append("train800", "images/train800/0.png 4"))),
                                    ("train800.txt:9: label 4 out of range; valid labels are 0..3",)),
    "negative label": (lambda w: w.train_vtab(w.vtab(append("train800", "images/train800/0.png -1"))),
                       ("train800.txt:9: label -1 out of range",)),
    "path with ..": (lambda w: w.prepare(w.vtab(append("train800", "../../outside.png 1"))),
                     ("train800.txt:9: path '../../outside.png' leaves the task folder",)),
    "absolute path": (lambda w: w.prepare(w.vtab(append("train800", "/etc/hostname 1"))),
                      ("train800.txt:9: path '/etc/hostname' is absolute",)),
    "symlink leaving the root": (lambda w: w.prepare(w.vtab(symlink_out)),
                                 ("train800.txt:4: path 'images/train800/3.png' leaves the task folder",)),
    "NUL byte in a path": (lambda w: w.prepare(w.vtab(append("train800", "images/a\0b.png 1"))),
                           ("train800.txt:9:", "control character")),
    "image missing": (lambda w: w.train_vtab(w.vtab(append("train800", "images/none.png 1"))),
                      ("train800.txt:9: image not found", "images/none.png")),
    "class with no image": (lambda w: w.prepare(w.vtab(lambda f: [
        (f / s).write_text((f / s).read_text().replace(" 3\n", " 2\n")) for s in
        ("train800.txt", "val200.txt", "train800val200.txt", "test.txt")])),
        ("kitti: 1 of 4 classes have no image", "empty: 3")),
    "bad task.json": (lambda w: w.prepare(w.vtab(lambda f: (f.parent / "mine").mkdir() or
                                                 (f.parent / "mine" / "task.json").write_text("{oops") or
                                                 (f.parent / "mine" / "train800.txt").write_text("a.png 0\n")),
                                          "--task", "mine"),
                      ("mine/task.json: not valid JSON",)),
    # images
    "corrupt image": (lambda w: w.train_vtab(w.vtab(replace_file("images/train800/3.png", b"not a png"))),
                      ("train800.txt:4: cannot decode image", "3.png", "--skip-bad-images")),
    "truncated image": (lambda w: w.prepare(w.vtab(truncate("images/val200/1.png"))),
                        ("val200.txt:2: cannot decode image", "truncated")),
    "empty image file": (lambda w: w.prepare(w.vtab(replace_file("images/test/0.png", b""))),
                         ("test.txt:1: cannot decode image",)),
    "empty class folder": (lambda w: (w.tmp / "empty" / "a").mkdir(parents=True)
                           or ["data", "split", w.tmp / "empty", "--out", w.out],
                           ("empty/a: class folder holds no images",)),
    # checkpoints
    "checkpoint missing": (lambda w: w.train("--checkpoint", w.tmp / "nope.pth"), ("nope.pth: no such file",)),
    "truncated safetensors": (lambda w: w.ckpt("w.safetensors", cut_half(lambda p, s: save_file(s, str(p)))),
                              ("checkpoint", "w.safetensors: cannot be read", "truncated")),
    "truncated pth": (lambda w: w.ckpt("w.pth", cut_half(lambda p, s: torch.save(s, p))),
                      ("checkpoint", "w.pth: cannot be read")),
    "npz that is no archive": (lambda w: w.ckpt("w.npz", lambda p, s: p.write_bytes(b"\x80\x04junk")),
                               ("w.npz: not a .npz archive",)),
    "npz of another layout": (lambda w: w.ckpt("w.npz", lambda p, s: np.savez(p, a=np.zeros(3))),
                              ("w.npz: not a ViT .npz in Google's layout",)),
    "npz with an object array": (
        lambda w: w.ckpt("w.npz", lambda p, s: np.savez(p, a=np.array([{"x": 1}], dtype=object))),
        ("w.npz: cannot be read", "allow_pickle=False")),
    "wrong-shaped tensor": (lambda w: w.ckpt("w.safetensors", safetensors_with(cls_token=lambda t: torch.zeros(1, 1, 8))),
                            ("w.safetensors: tensor 'cls_token' has shape (1, 1, 8), the model expects (1, 1, 32)",)),
    "tensor missing": (lambda w: w.ckpt("w.safetensors", safetensors_with(norm__weight=None)),
                       ("w.safetensors: tensor 'norm.weight' is missing",)),
    "NaN weights": (lambda w: w.ckpt("w.safetensors", safetensors_with(pos_embed=lambda t: t.fill_(NAN))),
                    ("w.safetensors: tensor 'pos_embed' holds NaN",)),
    "pickle with code": (lambda w: w.ckpt("evil.pth", pickle_with_code),
                         ("evil.pth: refused by the weights-only loader", "never runs code")),
    "state dict that is a list": (lambda w: w.ckpt("w.pth", lambda p, s: torch.save(list(s.values()), p)),
                                  ("w.pth: holds a list, expected a state dict",)),
    "unknown checkpoint format": (lambda w: w.ckpt("w.ckpt", lambda p, s: p.write_bytes(b"x")),
                                  ("w.ckpt: unknown format '.ckpt'",)),
    "FID statistics that are no archive": (lambda w: (w.tmp / "s.npz").write_bytes(b"\x80junk")
                                           and ["fid", w.shared.folder, w.tmp / "s.npz"],
                                           ("s.npz: not a .npz statistics file",)),
    "FID statistics with NaN": (lambda w: np.savez(w.tmp / "s.npz", mu=np.full(4, NAN), sigma=np.eye(4))
                                or ["fid", w.shared.folder, w.tmp / "s.npz"], ("s.npz: mu or sigma holds NaN",)),
    # study specs
    "spec missing": (lambda w: ["study", "run", w.tmp / "none.toml", "--out", w.out], ("none.toml: study spec not found",)),
    "spec not TOML": (lambda w: w.study("[methods.full\n"), ("bad.toml: not valid TOML",)),
    "spec not UTF-8": (lambda w: w.study(b"# caf\xe9\n" + w.spec().encode()), ("bad.toml: line 1: not UTF-8",)),
    "spec unknown section": (lambda w: w.study(w.spec() + "[trainnig]\nepochs = 2\n"),
                             ("bad.toml: trainnig: unknown key; valid keys here:",)),
    "spec unknown key": (lambda w: w.study(w.spec(replace=("epochs = 1", "epoch = 1"))),
                         ("bad.toml: training.epoch: unknown key",)),
    "spec wrong type": (lambda w: w.study(w.spec(replace=("epochs = 1", "epochs = 'ten'"))),
                        ("bad.toml: training.epochs: must be an integer, got a string 'ten'",)),
    "spec negative lr": (lambda w: w.study(w.spec(replace=("lr = [0.1]", "lr = [0.1, -1.0]"))),
                         ("bad.toml: methods.linear.lr[1]: must be > 0, got -1.0",)),
    "spec zero epochs": (lambda w: w.study(w.spec(replace=("epochs = 1", "epochs = 0"))),
                         ("bad.toml: training.epochs: must be >= 1, got 0",)),
    "spec unknown method": (lambda w: w.study(w.spec(methods="[methods.prompt-magic]\n")),
                            ("bad.toml: methods.prompt-magic: unknown method",)),
    "spec unknown task": (lambda w: w.study(w.spec(replace=('tasks = ["colours"]', 'tasks = ["birds"]'))),
                          ("bad.toml: data.tasks[0]: unknown task 'birds'",)),
    "spec bad backbone kwarg": (lambda w: w.study(w.spec(replace=("depth = 1", "depth = 1\nfoo = 3"))),
                                ("foo=3", "[backbone.kwargs]")),
    "spec checkpoint missing": (lambda w: w.study(w.spec(replace=("pretrained = false", "checkpoint = '/no/w.npz'"))),
                                ("checkpoint /no/w.npz: no such file",)),
    "YAML python tag": (lambda w: w.study(f"name: !!python/object/apply:os.mkdir ['{w.tmp / SENTINEL}']\n"
                                          "methods: {full: {}}\n", "bad.yaml"), ("bad.yaml: not valid YAML", "python/object")),
    "YAML list at the top": (lambda w: w.study(b"- methods\n", "bad.yaml"), ("bad.yaml: top level: must be a table",)),
    # arguments
    "negative lr": (lambda w: w.train("--lr", "-1"), ("lr must be > 0, got -1.0",)),
    "NaN lr": (lambda w: w.train("--lr", "nan"), ("lr must be > 0, got nan",)),
    "zero epochs": (lambda w: w.train("--epochs", "0"), ("epochs must be >= 1, got 0",)),
    "lr that is no number": (lambda w: w.train("--lr", "fast"), ("argument --lr: invalid float value: 'fast'",)),
    "unknown method": (lambda w: w.train("--method", "prompt-magic"), ("unknown method 'prompt-magic'",)),
    "zero-shot regime": (lambda w: w.train("--regime", "kshot:0"), ("regime must be standard, kshot:K, fewshot:K or size:N",)),
    "unknown device": (lambda w: w.train("--device", "tpu"), ("--device must be cpu, cuda, cuda:N or mps, got 'tpu'",)),
    "absent GPU": (lambda w: w.train("--device", "cuda:99"), ("--device cuda:99:",)),
    "unknown backbone argument": (lambda w: w.train("--backbone-arg", "foo=1"),
                                  ("'vptlab-tiny' cannot be built", "foo=1")),
    "unknown command": (lambda w: ["frobnicate"], ("vptlab: error: argument COMMAND: invalid choice: 'frobnicate'",)),
    "unknown option": (lambda w: [*w.study(w.spec()), "--wrokers", "2"], ("error: unrecognized arguments: --wrokers",)),
    "--out that is a file": (lambda w: w.out.write_text("x") and w.train(), ("out: File exists",)),
    "study --out that is a file": (lambda w: w.out.write_text("x") and w.study(w.spec()), ("out: File exists",)),
    "cache folder that is a file": (lambda w: (w.tmp / "c").write_text("x") and
                                    w.prepare(w.vtab(), "--cache-dir", str(w.tmp / "c")), ("c/", "Not a directory")),
    "zero image size": (lambda w: w.prepare(w.vtab(), "--image-size", "0"), ("image_size must be",)),
    "zero workers": (lambda w: w.study(w.spec()) + ["--workers", "0"], ("--workers must be >= 1, got 0",)),
    "negative checkpoint interval": (lambda w: w.study(w.spec()) + ["--checkpoint-seconds", "-1"],
                                     ("--checkpoint-seconds must be > 0",)),
}  # fmt: skip


def _check(world: World, name: str, outcome) -> None:
    assert_one_clear_line(outcome, CASES[name][1])
    assert written_results(world.tmp) == []
    assert not (world.tmp / SENTINEL).exists()  # nothing the input carried was executed


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_is_one_clear_line_and_writes_no_result(name, shared, tmp_path):
    world = World(tmp_path, shared)
    _check(world, name, run_in_process(CASES[name][0](world)))


SUBPROCESS_CASES = ["label above the class count", "pickle with code", "spec unknown key",
                    "YAML python tag", "unknown device"]  # fmt: skip


@pytest.mark.slow
def test_the_user_sees_the_same_single_line_from_a_real_process(shared, tmp_path):
    worlds = {name: World(tmp_path / str(i), shared) for i, name in enumerate(SUBPROCESS_CASES)}
    argvs = {name: CASES[name][0](world) for name, world in worlds.items()}
    with ThreadPoolExecutor(2) as pool:  # CI has two cores; each process spends most of its time importing
        outcomes = dict(zip(argvs, pool.map(run_subprocess, argvs.values())))
    for name, outcome in outcomes.items():
        _check(worlds[name], name, outcome)
