"""``vptlab data check`` for a user's own folder: every problem at once, in the report VTAB-1k roots get.

Problems (exit 2): malformed list lines, labels out of range, missing files, class folders without images, images
that cannot be decoded.  Notes (shown, exit 0): files that are not used (not images, unsupported formats, hidden
files, files outside the class folders), classes too small to appear in val or test, and unreadable images when
``skip_bad_images`` is set (training would skip them).
"""

from __future__ import annotations

import os
from pathlib import Path

from vptlab.data.base import TaskInfo
from vptlab.data.folders import (
    SPLIT_NAMES,
    FolderOptions,
    read_folder,
)
from vptlab.data.images import IMAGE_EXTENSIONS, read_list_file
from vptlab.data.scan import loose_files, walk_images
from vptlab.data.vtab1k import CheckReport, SplitReport, TaskReport, unreadable_images
from vptlab.errors import UserError


def check_folder(
    path: str | os.PathLike,
    options: FolderOptions | None = None,
    *,
    images: bool = True,
    skip_bad_images: bool = False,
) -> CheckReport:
    """Check a folder source (class sub-folders, a list file, or a split-file folder); collect every problem."""
    path, options = Path(path), options or FolderOptions()
    if not path.exists():
        raise UserError(f"image folder {path} not found")
    report = CheckReport(path)
    problems, notes = _structure(path)
    name = options.name or (path.parent if path.is_file() else path).resolve().name
    placeholder = TaskInfo(name, options.group, options.objective, 2)  # until the folder is read
    task = TaskReport(placeholder, path, problems=problems, notes=notes)
    report.tasks.append(task)
    if problems:
        return report
    folder = read_folder(path, options)
    task.info = folder.info
    task.splits = [
        SplitReport(split if not folder.generated else f"{split} (made)", len(lst), len(lst.classes_seen()))
        for split, lst in folder.splits.items()
    ]
    task.notes += list(folder.notes)
    if images:
        bad = unreadable_images(folder.splits.values())
        if skip_bad_images:
            task.notes += [f"{p} (skipped under --skip-bad-images)" for p in bad]
        else:
            task.problems += bad
    return report


def _structure(path: Path) -> tuple[list[str], list[str]]:
    """Problems and notes of the folder's layout, before any split is made."""
    if path.is_file():
        _, problems = read_list_file(path, path.parent, num_classes=None, confine=False)
        return problems, []
    if (path / "train.txt").is_file():
        problems = []
        for split in SPLIT_NAMES:
            if not (path / f"{split}.txt").is_file():
                problems.append(
                    f"{path}: has train.txt but not {split}.txt; a split needs train, val and test"
                )
                continue
            problems += read_list_file(path / f"{split}.txt", path, num_classes=None, confine=False)[1]
        return problems, []
    return _class_folder_structure(path)


def _class_folder_structure(root: Path) -> tuple[list[str], list[str]]:
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    classes = [p for p in subdirs if not p.name.startswith(".")]
    notes = [f"{p}{os.sep}: hidden folder, not read" for p in subdirs if p.name.startswith(".")]
    notes += loose_files(root)
    if not classes:
        exts = ", ".join(IMAGE_EXTENSIONS)
        return [
            f"{root}: no class sub-folders; expected {root}/<class>/<image> with {exts}, or a list file"
        ], notes
    problems = []
    for class_dir in classes:
        found, dropped = walk_images(class_dir, root)
        notes += [f"{d} (not used)" for d in dropped]
        if not found:
            problems.append(f"{class_dir}: class folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return problems, notes
