"""``vptlab predict`` and ``vptlab.load_tuned`` on a real-photo style folder task (JPEG and PNG files)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch

import vptlab
from vptlab.cli import main
from vptlab.data import load_task
from vptlab.deploy.predict import predict_to_csv
from vptlab.train import RunConfig, train_run
from vptlab_testing import make_photo_folder

CLASSES = ["cat", "dog", "owl"]
TINY = (("depth", 2), ("embed_dim", 32), ("num_heads", 2))


def folder_cfg(photos, method: str = "full", **kw) -> RunConfig:
    base = dict(method=method, task=photos.name, data=f"folder:{photos}", pretrained=False, backbone_args=TINY,
                image_size=16, interpolation="bicubic", epochs=6, warmup_epochs=1, batch_size=8, lr=0.01)  # fmt: skip
    return RunConfig.of(**{**base, **kw})


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    photos = make_photo_folder(root / "photos", CLASSES)
    result = train_run(folder_cfg(photos), root / "run")
    assert result["status"] == "ok"
    new = make_photo_folder(root / "new", CLASSES, per_class=4, seed=5)
    (new / "owl" / "nested").mkdir()
    (new / "owl" / "000.png").rename(new / "owl" / "nested" / "moved.png")
    (new / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return {"photos": photos, "run": root / "run", "new": new, "result": result}


def test_the_run_keeps_its_label_map(photo_run):
    tuned = vptlab.load_tuned(photo_run["run"])
    assert tuned.classes == CLASSES
    assert (photo_run["run"] / "labels.json").is_file()
    assert tuned.preprocess.image_size == 16 and tuned.preprocess.interpolation == "bicubic"


def test_preprocessing_is_the_training_one(photo_run):
    """A training file read by load_tuned is byte-for-byte the image the run trained on."""
    tuned = vptlab.load_tuned(photo_run["run"])
    data = load_task(f"folder:{photo_run['photos']}", photo_run["photos"].name, image_size=16,
                     interpolation="bicubic")  # fmt: skip
    split_dir = photo_run["result"]["data"]["split_files"]
    first = Path(split_dir, "train.txt").read_text().splitlines()[0].rsplit(maxsplit=1)[0]
    mine = tuned.preprocess.read(f"{split_dir}/{first}")
    assert np.array_equal(mine, data.train.images[0])
    x = tuned.preprocess.tensor(mine[None])
    assert torch.allclose(x, (torch.from_numpy(np.array(mine)).permute(2, 0, 1)[None] / 255.0
                              - torch.tensor(data.mean).view(1, 3, 1, 1)) / torch.tensor(data.std).view(1, 3, 1, 1))  # fmt: skip


def test_predict_writes_a_row_per_image_and_names_the_unreadable(photo_run):
    tuned = vptlab.load_tuned(photo_run["run"])
    out = io.StringIO()
    done, skipped = predict_to_csv(tuned, [photo_run["new"]], out, top_k=2, batch_size=5)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert done == 12 and len(rows) == 13  # 12 images (one in a nested folder) + the broken one
    assert [p.path for p in skipped] == [str(photo_run["new"] / "broken.jpg")]
    broken = next(r for r in rows if r["path"].endswith("broken.jpg"))
    assert broken["error"].startswith("unreadable image") and broken["label_1"] == ""
    good = [r for r in rows if not r["error"]]
    assert any(r["path"].endswith("nested/moved.png") for r in good)
    for r in good:
        assert r["label_1"] in CLASSES and r["label_2"] in CLASSES and r["label_1"] != r["label_2"]
        assert 1.0 >= float(r["prob_1"]) >= float(r["prob_2"]) >= 0.0
        assert CLASSES[int(r["index_1"])] == r["label_1"]
    right = sum(r["label_1"] == r["path"].split("/")[-2].replace("nested", "owl") for r in good)
    assert right >= 9  # the colours are easy: a tuned model gets most of 12 new images right


def test_predictions_are_the_models_own(photo_run):
    tuned = vptlab.load_tuned(photo_run["run"])
    files = sorted((photo_run["new"] / "cat").glob("*"))
    rows = tuned.predict(files, top_k=3)
    logits = tuned.logits(np.stack([tuned.preprocess.read(f) for f in files]))
    probs = torch.softmax(logits, 1)
    for row, p in zip(rows, probs):
        assert row["labels"][0] == CLASSES[int(p.argmax())]
        assert row["probs"][0] == pytest.approx(float(p.max()), rel=1e-5)


def test_cli_predict_to_csv(photo_run, tmp_path, capsys):
    out = tmp_path / "pred" / "predictions.csv"
    code = main(["predict", str(photo_run["run"]), str(photo_run["new"]), "--out", str(out), "--top-k", "1"])
    assert code == 0
    err = capsys.readouterr().err
    assert f"skipped {photo_run['new'] / 'broken.jpg'}" in err and "predicted 12 image(s), skipped 1" in err
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["path", "label_1", "prob_1", "index_1", "error"] and len(rows) == 14


def test_cli_predict_bad_input(photo_run, tmp_path, capsys):
    assert main(["predict", str(photo_run["run"]), str(tmp_path / "missing.jpg")]) == 2
    assert "missing.jpg: no such image file or folder" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), str(photo_run["new"])]) == 2
    assert "not a finished run" in capsys.readouterr().err
    assert main(["predict", str(photo_run["run"]), str(photo_run["new"]), "--top-k", "0"]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(photo_run["run"]), str(tmp_path / "empty")]) == 2
    assert "holds no image files" in capsys.readouterr().err


def test_every_method_predicts(photo_run, tmp_path):
    """Each method's tuned run loads back and predicts (prompts, LoRA modules, stage-1 backbones)."""
    from vptlab.methods import list_methods

    for method in list_methods():
        cfg = folder_cfg(photo_run["photos"], method.name, epochs=1, warmup_epochs=0, lr=None)
        result = train_run(cfg, tmp_path / method.name)
        assert result["status"] == "ok", (method.name, result.get("error"))
        rows = vptlab.load_tuned(tmp_path / method.name).predict(sorted((photo_run["new"] / "dog").glob("*")))
        assert len(rows) == 4 and all(r["labels"][0] in CLASSES for r in rows), method.name


def test_cli_predict_refuses_broken_runs(photo_run, tmp_path, capsys):
    import json
    import shutil

    torn = tmp_path / "torn"
    shutil.copytree(photo_run["run"], torn)
    (torn / "tuned.safetensors").write_bytes(b"not safetensors")
    assert main(["predict", str(torn), str(photo_run["new"])]) == 2
    assert "cannot read tuned weights" in capsys.readouterr().err
    failed = tmp_path / "failed"
    shutil.copytree(photo_run["run"], failed)
    result = json.loads((failed / "result.json").read_text())
    (failed / "result.json").write_text(json.dumps({**result, "status": "diverged"}))
    assert main(["export", str(failed), "--format", "safetensors"]) == 2
    assert "ended 'diverged'" in capsys.readouterr().err
