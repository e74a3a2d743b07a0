"""``vptlab data check`` on your own folder: every problem and every unused file at once, any source form."""

from __future__ import annotations

from messy_folder import make_messy_folder
from vptlab.cli import main


def _named(text: str, rel: str) -> bool:
    return rel in text or rel.replace("/", "\\") in text


def test_check_lists_every_problem_of_a_messy_folder(tmp_path, capsys):
    messy = make_messy_folder(tmp_path / "export")
    for source in (str(messy.root), f"folder:{messy.root}"):
        assert main(["data", "check", source]) == 2
        out, err = capsys.readouterr()
        assert "2 problems found" in err
        for rel in messy.unreadable:
            assert _named(out, rel) and "problem:" in out
        for rel in messy.not_used:
            assert _named(out, rel), rel
        assert f"class '{messy.small_class}' has 1 image: none in val or test" in out
    # --skip-bad-images: the unreadable files become notes; nothing else is a problem
    assert main(["data", "check", str(messy.root), "--skip-bad-images"]) == 0
    out = capsys.readouterr().out
    assert all(_named(out, rel) for rel in messy.unreadable) and "skipped under --skip-bad-images" in out


def test_check_collects_empty_class_folders_and_bad_list_lines(tmp_path, capsys):
    messy = make_messy_folder(tmp_path / "export")
    (messy.root / "empty-class").mkdir()
    (messy.root / "empty-class" / "Thumbs.db").write_bytes(b"x")
    assert main(["data", "check", str(messy.root), "--no-images"]) == 2
    out = capsys.readouterr().out
    assert "empty-class: class folder holds no images" in out and "Thumbs.db" in out
    lst = tmp_path / "list.txt"
    lst.write_text("export/dogs/d1.PNG 0\nexport/dogs/d2.PNG x\nnope.png 1\n")
    assert main(["data", "check", f"folder:{lst}", "--no-images"]) == 2
    out = capsys.readouterr().out
    assert "list.txt:2: expected" in out and "list.txt:3: image not found" in out


def test_prepare_and_check_take_root_task_like_every_command(tmp_path, capsys):
    from datahelpers import make_vtab

    root = make_vtab(tmp_path / "vtab", task="widgets").parent  # no task.json: inferred, with a note
    assert main(["data", "prepare", str(root / "widgets"), "--image-size", "8"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("widgets: train ") and "no task.json" in captured.err
    assert main(["data", "check", f"vtab1k:{root}/widgets", "--no-images"]) == 0
    out = capsys.readouterr().out
    assert "widgets (natural, classification" in out and "no task.json; inferred" in out
