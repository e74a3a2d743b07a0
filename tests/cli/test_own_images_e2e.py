"""A messy real-world export goes through ``data check``, ``train``, ``fid`` and ``advise`` in one pass: every odd
file is either used (the same files by every command) or named on the console; nothing is lost silently."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from messy_folder import make_messy_folder
from vptlab.cli import main

TINY = ["--no-pretrained", "--backbone-arg", "depth=1", "--backbone-arg", "embed_dim=16",
        "--backbone-arg", "num_heads=2", "--image-size", "16", "--no-progress"]  # fmt: skip


def _named(text: str, rel: str) -> bool:
    return rel in text


def _console_and_listing(err: str) -> str:
    """What the console said, plus every file it points to ("and N more, listed in FILE")."""
    listed = re.findall(r"listed in (\S+)", err)
    return err + "".join(Path(f).read_text(encoding="utf-8") for f in listed)


def test_a_messy_export_goes_through_every_command(tmp_path, capsys):
    messy = make_messy_folder(tmp_path / "export")
    odd = messy.unreadable + messy.not_used

    # 1. data check: every problem and every unused file at once
    assert main(["data", "check", f"folder:{messy.root}", "--skip-bad-images"]) == 0
    out = capsys.readouterr().out
    assert all(_named(out, rel) for rel in odd) and f"class '{messy.small_class}'" in out

    # 2. train (a final run by default): the used images and only those; the rest named on the console
    run = tmp_path / "run"
    assert main(["train", "--method", "linear", "--data", str(messy.root), "--epochs", "1",
                 "--warmup-epochs", "0", "--skip-bad-images", "--out", str(run), *TINY]) == 0  # fmt: skip
    err = capsys.readouterr().err
    said = _console_and_listing(err)
    assert all(_named(said, rel) for rel in odd), [r for r in odd if not _named(said, r)]
    assert f"class '{messy.small_class}' has 1 image" in err
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "ok" and "test_top1" in result["metrics"]
    data = result["data"]
    assert data["sizes"]["train"] + data["sizes"]["test"] == len(messy.used)  # final: train = train + val
    recorded = "\n".join(data["dropped_files"])  # the run folder records every file left out
    assert all(_named(recorded, rel) for rel in odd)
    assert data["classes"] == ["cats", "dogs", "owl"]

    # 3. fid: the same files as training (every used image, the GIF and the symlink included)
    other = tmp_path / "other"
    other.mkdir()
    for i in range(4):
        Image.fromarray(np.full((12, 12, 3), 40 * i, np.uint8)).save(other / f"{i}.png")
    stats = tmp_path / "other.npz"
    fid_args = ["--features", "backbone", "--backbone", "vptlab-tiny", "--skip-bad-images"]
    assert main(["fid", str(other), "--save-stats", str(stats), *fid_args]) == 0
    capsys.readouterr()
    assert main(["fid", f"folder:{messy.root}", str(other), "--json", *fid_args]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["a_images"] == len(messy.used)
    said = _console_and_listing(captured.err)
    assert all(_named(said, rel) for rel in odd)

    # 4. advise: the images a final run trains on, the same count training used
    assert main(["advise", str(messy.root), "--objective", "classification", "--pretrain-stats", str(stats),
                 "--fid-threshold", "1000", "--json", *fid_args]) == 0  # fmt: skip
    captured = capsys.readouterr()
    advice = json.loads(captured.out)
    assert advice["train_size"] == data["sizes"]["train"] and advice["recommendation"] == "VPT"
    assert all(_named(_console_and_listing(captured.err), rel) for rel in messy.unreadable)

    # without --skip-bad-images every command stops at the first unreadable file and names it
    for argv in (["fid", str(messy.root), str(other), *fid_args[:-1]],
                 ["advise", str(messy.root), "--objective", "structured", "--pretrain-stats", str(stats),
                  *fid_args[:-1]]):  # fmt: skip
        assert main(argv) == 2
        assert "cannot decode image" in capsys.readouterr().err
