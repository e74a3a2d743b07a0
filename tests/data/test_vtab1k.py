"""VTAB-1k folders: loading each stage, the record, and every kind of bad input named by file and line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from datahelpers import NUM_CLASSES, TASK, append_line, make_vtab, write_image
from PIL import Image

from vptlab.data import TaskInfo, list_tasks, load_task
from vptlab.data.vtab1k import check_root
from vptlab.errors import UserError


def _load(root: Path, cache_dir: Path, **kw):
    return load_task(f"vtab1k:{root}", TASK, image_size=8, cache_dir=cache_dir, **kw)


def test_tune_stage_reads_train800_val200_test(vtab_root, cache_dir):
    data = _load(vtab_root, cache_dir)
    assert (len(data.train), len(data.val), len(data.test)) == (16, 8, 8)
    assert data.train.images.shape == (16, 8, 8, 3) and data.train.images.dtype == np.uint8
    assert data.info.name == TASK and data.info.num_classes == NUM_CLASSES
    assert data.train.labels.tolist() == [i % NUM_CLASSES for i in range(16)]


def test_final_stage_trains_on_train800val200(vtab_root, cache_dir):
    data = _load(vtab_root, cache_dir, stage="final")
    assert data.val is None
    assert (len(data.train), len(data.test)) == (24, 8)


def test_pixels_are_the_file_resized_bilinear(vtab_root, cache_dir):
    data = _load(vtab_root, cache_dir)
    with Image.open(vtab_root / TASK / "images/train800/0003.png") as img:
        want = np.asarray(img.convert("RGB").resize((8, 8), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(data.train.images[3], want)


def test_record_names_everything_a_run_saw(vtab_root, cache_dir):
    record = _load(vtab_root, cache_dir, interpolation="bicubic").record
    for key in (
        "source",
        "task",
        "stage",
        "regime",
        "split_seed",
        "image_size",
        "interpolation",
        "mean",
        "std",
    ):
        assert key in record
    assert record["interpolation"] == "bicubic" and record["image_size"] == 8
    assert record["sizes"] == {"train": 16, "val": 8, "test": 8}
    assert set(record["manifests"]) == {"train", "val", "test"} and record["skipped_images"] == 0


def test_manifest_follows_the_member_list_not_the_location(tmp_path, cache_dir):
    a = _load(make_vtab(tmp_path / "a").parent, cache_dir)
    b = _load(make_vtab(tmp_path / "b").parent, cache_dir)
    assert a.record["manifests"] == b.record["manifests"]


def test_list_tasks_and_bare_path_detection(vtab_root, cache_dir):
    assert [t.name for t in list_tasks(f"vtab1k:{vtab_root}")] == [TASK]
    assert [t.name for t in list_tasks(str(vtab_root))] == [TASK]
    data = load_task(str(vtab_root / TASK), TASK, image_size=8, cache_dir=cache_dir)  # the task folder itself
    assert data.record["source_kind"] == "vtab1k"


def test_unknown_task_lists_the_known_ones(vtab_root):
    with pytest.raises(UserError, match="unknown VTAB-1k task 'kiti'.*cifar.*kitti"):
        load_task(f"vtab1k:{vtab_root}", "kiti")


def test_task_folder_missing_names_the_tasks_present(vtab_root):
    with pytest.raises(UserError, match=r"cifar not found; tasks present in .*: kitti"):
        load_task(f"vtab1k:{vtab_root}", "cifar")


# --- bad input: one line naming file:line ------------------------------------------------------------------


def test_missing_split_file(vtab_root, cache_dir):
    (vtab_root / TASK / "val200.txt").unlink()
    with pytest.raises(UserError, match=r"val200\.txt: split file not found; a VTAB-1k task folder holds"):
        _load(vtab_root, cache_dir)


@pytest.mark.parametrize(
    "line, match",
    [
        ("images/train800/0000.png", r"expected 'relative/path label' with an integer label, got"),
        ("images/train800/0000.png cat", r"expected 'relative/path label'"),
        ("images/train800/0000.png 4", r"label 4 out of range; valid labels are 0\.\.3"),
        ("images/train800/0000.png -1", r"label -1 out of range"),
        ("../escape.png 0", r"path '\.\./escape\.png' leaves the task folder"),
        ("/etc/hostname 0", r"path '/etc/hostname' is absolute"),
        ("images/train800/nope.png 0", r"image not found: .*nope\.png"),
    ],
)
def test_bad_line_is_named_by_file_and_line(vtab_root, cache_dir, line, match):
    split_file = vtab_root / TASK / "train800.txt"
    lineno = append_line(split_file, line)
    (vtab_root / "escape.png").write_bytes(b"")
    with pytest.raises(UserError, match=f"{split_file}:{lineno}: {match}") as err:
        _load(vtab_root, cache_dir)
    assert "\n" not in str(err.value)


def test_symlink_resolving_outside_the_task_folder(vtab_root, cache_dir, tmp_path):
    outside = write_image(tmp_path / "outside.png", 1)
    os.symlink(outside, vtab_root / TASK / "images" / "link.png")
    lineno = append_line(vtab_root / TASK / "train800.txt", "images/link.png 0")
    with pytest.raises(UserError, match=rf"train800\.txt:{lineno}: path 'images/link\.png' leaves the task"):
        _load(vtab_root, cache_dir)


def test_several_problems_say_how_many_more(vtab_root, cache_dir):
    split_file = vtab_root / TASK / "train800.txt"
    append_line(split_file, "a.png 9")
    append_line(split_file, "b.png 9")
    with pytest.raises(UserError, match=r"\(and 1 more problems; run 'vptlab data check' to list them all\)"):
        _load(vtab_root, cache_dir)


def test_empty_class_names_the_task_folder(tmp_path, cache_dir):
    folder = make_vtab(tmp_path / "vtab")
    for split in ("train800", "val200", "train800val200", "test"):
        path = folder / f"{split}.txt"
        path.write_text(
            "".join(line for line in path.read_text().splitlines(True) if not line.endswith(" 3\n"))
        )
    with pytest.raises(UserError, match=r"1 of 4 classes have no image in .*\(empty: 3\); kitti labels must"):
        _load(tmp_path / "vtab", cache_dir)


def test_corrupt_image_names_its_line(vtab_root, cache_dir):
    (vtab_root / TASK / "images/train800/0005.png").write_bytes(b"not a png at all")
    with pytest.raises(
        UserError, match=r"train800\.txt:6: cannot decode image .*0005\.png: .*--skip-bad-images"
    ):
        _load(vtab_root, cache_dir)


def test_truncated_jpeg_is_unreadable(tmp_path, cache_dir):
    folder = make_vtab(tmp_path / "vtab", ext="jpg")
    bad = folder / "images/test/0002.jpg"
    write_image(bad, 7, size=(64, 64))
    bad.write_bytes(bad.read_bytes()[:300])
    with pytest.raises(UserError, match=r"test\.txt:3: cannot decode image"):
        _load(tmp_path / "vtab", cache_dir)


def test_skip_bad_images_counts_them_in_the_record(vtab_root, cache_dir):
    (vtab_root / TASK / "images/train800/0005.png").write_bytes(b"garbage")
    (vtab_root / TASK / "images/test/0001.png").write_bytes(b"")
    data = _load(vtab_root, cache_dir, skip_bad_images=True)
    assert (len(data.train), len(data.test)) == (15, 7)
    assert data.record["skipped_images"] == 2
    assert any("train800.txt:6" in s for s in data.record["skipped"])
    # The cached entry remembers the bad file: without skipping, it is still an error.
    with pytest.raises(UserError, match=r"train800\.txt:6: cannot decode image"):
        _load(vtab_root, cache_dir)


def test_pool_must_not_hold_test_images(vtab_root, cache_dir):
    lineno = append_line(vtab_root / TASK / "pool.txt", "images/test/0000.png 0")
    with pytest.raises(
        UserError, match=rf"pool\.txt:{lineno}: image 'images/test/0000\.png' is also in test"
    ):
        _load(vtab_root, cache_dir, regime="size:16")


# --- check collects everything -----------------------------------------------------------------------------


def test_check_collects_every_problem(vtab_root):
    append_line(vtab_root / TASK / "train800.txt", "x.png 7")
    append_line(vtab_root / TASK / "test.txt", "broken line")
    (vtab_root / TASK / "images/val200/0001.png").write_bytes(b"junk")
    (vtab_root / "notes").mkdir()
    report = check_root(vtab_root)
    problems = report.all_problems()
    assert len(problems) == 3
    assert any("train800.txt:17: label 7 out of range" in p for p in problems)
    assert any("test.txt:9: expected" in p for p in problems)
    assert any("val200.txt:2: cannot decode image" in p for p in problems)
    assert any("not a VTAB-1k task folder" in n for n in report.notes)
    counts = {s.name: (s.count, s.classes_seen) for s in report.tasks[0].splits}
    assert counts["train800"] == (16, 4) and counts["pool"] == (20, 4)


def test_check_clean_root_has_no_problems(vtab_root):
    assert check_root(vtab_root).all_problems() == []


def test_check_unknown_task_is_a_user_error(vtab_root):
    with pytest.raises(UserError, match="unknown VTAB-1k task"):
        check_root(vtab_root, "nope")


# --- tasks outside the VTAB-1k table (task.json) ----------------------------------------------------------


def test_a_task_folder_with_task_json(tmp_path, cache_dir):
    folder = make_vtab(tmp_path / "vtab", task="widgets")
    (folder / "task.json").write_text('{"group": "specialized", "objective": "structured", "num_classes": 4}')
    make_vtab(tmp_path / "vtab")  # and a VTAB-1k task beside it
    assert [t.name for t in list_tasks(str(tmp_path / "vtab"))] == [TASK, "widgets"]
    data = load_task(str(folder), "widgets", image_size=8, cache_dir=cache_dir)
    assert (data.info.group, data.info.objective, len(data.train)) == ("specialized", "structured", 16)
    assert check_root(tmp_path / "vtab").all_problems() == []


@pytest.mark.parametrize(
    "text, match",
    [
        ("{", "not valid JSON"),
        ('{"group": "natural"}', "expected {"),
        ('{"group": "odd", "objective": "structured", "num_classes": 4}', "group must be one of"),
    ],
)
def test_bad_task_json_names_the_file(tmp_path, text, match):
    folder = make_vtab(tmp_path / "vtab", task="widgets")
    (folder / "task.json").write_text(text)
    with pytest.raises(UserError, match=rf"widgets/task\.json: .*{match}"):
        load_task(f"vtab1k:{tmp_path / 'vtab'}", "widgets")


def test_a_folder_without_task_json_loads_with_inferred_metadata_and_a_note(tmp_path, capsys):
    make_vtab(tmp_path / "vtab", task="widgets")
    data = load_task(f"vtab1k:{tmp_path / 'vtab'}", "widgets")
    labels = np.concatenate([data.train.labels, data.val.labels, data.test.labels])
    assert data.info == TaskInfo("widgets", "natural", "classification", int(labels.max()) + 1)
    note = next(n for n in data.record["notes"] if "no task.json" in n)
    assert "inferred" in note and "task.json" in capsys.readouterr().err
    assert [t.name for t in list_tasks(tmp_path / "vtab")] == ["widgets"]
    again = load_task(tmp_path / "vtab" / "widgets", "widgets")  # a bare task-folder path: the same task
    assert again.record["manifests"] == data.record["manifests"]
    with pytest.raises(UserError, match=r"unknown VTAB-1k task 'gadgets' \(and no split files"):
        load_task(f"vtab1k:{tmp_path / 'vtab'}", "gadgets")
