"""``vptlab data``: check reports, exit codes, one-line errors, split, prepare, cache."""

from __future__ import annotations

import json
import re

from datahelpers import TASK, append_line, make_class_folders

from vptlab.cli import main


def test_check_clean_root_reports_counts_and_exits_0(vtab_root, capsys):
    assert main(["data", "check", str(vtab_root)]) == 0
    out = capsys.readouterr().out
    assert "kitti (structured, structured, 4 classes)" in out
    assert "train800.txt" in out and "16 images  4/4 classes seen" in out
    assert "pool.txt" in out and "ok" in out


def test_check_lists_every_problem_and_exits_2(vtab_root, capsys):
    append_line(vtab_root / TASK / "train800.txt", "images/x.png 0")
    append_line(vtab_root / TASK / "val200.txt", "images/val200/0000.png 11")
    (vtab_root / TASK / "test.txt").unlink()
    assert main(["data", "check", str(vtab_root), "--task", TASK]) == 2
    captured = capsys.readouterr()
    assert "train800.txt:17: image not found" in captured.out
    assert "val200.txt:9: label 11 out of range; valid labels are 0..3" in captured.out
    assert "test.txt: split file not found" in captured.out
    assert re.search(r"test\.txt\s+missing", captured.out)
    assert captured.err.strip().endswith("3 problems found in " + str(vtab_root))


def test_check_json(vtab_root, capsys):
    assert main(["data", "check", str(vtab_root), "--json", "--no-images"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problem_count"] == 0 and report["tasks"][0]["info"]["name"] == TASK


def test_check_unknown_task_is_one_line_exit_2(vtab_root, capsys):
    assert main(["data", "check", str(vtab_root), "--task", "kiti"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vptlab: error: unknown VTAB-1k task 'kiti' (and no ") and err.count("\n") == 1
    assert "task.json describing it); known tasks: cifar, caltech101" in err


def test_bad_input_while_preparing_is_one_line_exit_2(vtab_root, capsys, tmp_path):
    split_file = vtab_root / TASK / "train800.txt"
    lineno = append_line(split_file, "images/train800/0000.png")
    assert main(["data", "prepare", f"vtab1k:{vtab_root}", "--cache-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vptlab: error: {split_file}:{lineno}: expected 'relative/path label'")
    assert err.count("\n") == 1


def test_prepare_fills_the_cache_then_skips_bad_images_on_request(vtab_root, capsys, tmp_path):
    (vtab_root / TASK / "images/test/0000.png").write_bytes(b"x")
    args = ["data", "prepare", str(vtab_root), "--image-size", "8", "--cache-dir", str(tmp_path / "c")]
    assert main(args) == 2
    assert "test.txt:1: cannot decode image" in capsys.readouterr().err
    assert main([*args, "--skip-bad-images"]) == 0
    assert "kitti: train 24, test 7 at 8px; 1 skipped" in capsys.readouterr().out
    assert main(["data", "cache", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "images" in capsys.readouterr().out


def test_split_writes_files_and_label_map(tmp_path, capsys):
    pets = make_class_folders(tmp_path / "pets", {"cat": 5, "dog": 5})
    assert main(["data", "split", str(pets), "--out", str(tmp_path / "s"), "--seed", "4"]) == 0
    assert "pets: 2 classes; train 6, val 2, test 2" in capsys.readouterr().out
    labels = json.loads((tmp_path / "s" / "labels.json").read_text())
    assert labels["classes"] == ["cat", "dog"] and labels["split"]["seed"] == 4
    assert main(["data", "list", f"folder:{tmp_path / 's'}"]) == 0
    assert "pets" in capsys.readouterr().out


def test_split_bad_fraction_is_one_line(tmp_path, capsys):
    pets = make_class_folders(tmp_path / "pets", {"cat": 5, "dog": 5})
    assert main(["data", "split", str(pets), "--test-fraction", "2"]) == 2
    assert "test_fraction must be between 0 and 1" in capsys.readouterr().err


def test_list_vtab(vtab_root, capsys):
    assert main(["data", "list", f"vtab1k:{vtab_root}"]) == 0
    assert "kitti" in capsys.readouterr().out


def test_cache_clear(tmp_path, capsys):
    assert main(["data", "cache", "--clear", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "freed 0.0 MiB" in capsys.readouterr().out


def test_check_missing_root_is_one_line_exit_2(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nope")]) == 2
    assert (
        capsys.readouterr().err
        == f"vptlab: error: VTAB-1k root {tmp_path / 'nope'} not found (expected a folder holding <task>/train800.txt, ...)\n"
    )
