"""The practitioner's path of the README, command by command, on a real-photo style folder task:
advise -> train -> predict -> export (ONNX) -> TensorBoard."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from vptlab.cli import main
from vptlab_testing import make_photo_folder

ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")

CLASSES = ["cat", "dog", "owl"]
TINY = ["--backbone-arg", "depth=2", "--backbone-arg", "embed_dim=32", "--backbone-arg", "num_heads=2"]


def _onnx_input(files: list[str], pre: dict) -> np.ndarray:
    """What another program does with the export's JSON alone: decode, resize, scale, normalise."""
    size, resample = pre["image_size"], Image.Resampling[pre["interpolation"].upper()]
    images = [np.asarray(Image.open(f).convert("RGB").resize((size, size), resample)) for f in files]
    x = np.stack(images).astype(np.float32) / 255.0
    x = (x - np.array(pre["mean"], np.float32)) / np.array(pre["std"], np.float32)
    return x.transpose(0, 3, 1, 2).copy()


def test_advise_train_predict_export_tensorboard(tmp_path, capsys):
    from vptlab.analysis.fid import save_stats, set_stats
    from vptlab.analysis.fid_features import BackboneFeatures

    photos = make_photo_folder(tmp_path / "photos", CLASSES)
    new = make_photo_folder(tmp_path / "new", CLASSES, per_class=3, seed=9)
    stats = tmp_path / "pretrain.npz"  # the pretraining side of the FID, small and offline
    save_stats(stats, set_stats(str(make_photo_folder(tmp_path / "up", ("a", "b"), per_class=10, seed=3)),
                                BackboneFeatures()))  # fmt: skip

    # 1. advise
    assert main(["advise", str(photos), "--objective", "classification", "--pretrain-stats", str(stats),
                 "--fid-threshold", "100", "--json"]) == 0  # fmt: skip
    advice = json.loads(capsys.readouterr().out)
    method = {"FT": "full", "VPT": "vpt-deep"}[advice["recommendation"]]

    # 2. train the recommended method, logging to TensorBoard
    run = tmp_path / "run"
    assert main(["train", "--method", method, "--task", "photos", "--data", f"folder:{photos}", "--no-pretrained",
                 *TINY, "--image-size", "16", "--epochs", "6", "--warmup-epochs", "1", "--batch-size", "8",
                 "--lr", "0.01" if method == "full" else "1.0", "--log", "tensorboard", "--out", str(run),
                 "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()

    # 3. predict a folder of new images to CSV
    preds = tmp_path / "predictions.csv"
    assert main(["predict", str(run), str(new), "--out", str(preds), "--no-progress"]) == 0
    rows = list(csv.DictReader(preds.open()))
    assert len(rows) == 9 and all(r["label_1"] in CLASSES for r in rows)

    # 4. export to ONNX: onnxruntime, fed from the JSON beside the model, gives the same top-1
    assert main(["export", str(run), "--format", "onnx"]) == 0
    model = run / "export" / "model.onnx"
    meta = json.loads((run / "export" / "model.onnx.json").read_text())
    assert meta["classes"] == CLASSES
    x = _onnx_input([r["path"] for r in rows], meta["preprocessing"])
    (logits,) = ort.InferenceSession(str(model)).run(["logits"], {"images": x})
    assert [meta["classes"][i] for i in logits.argmax(1)] == [r["label_1"] for r in rows]

    # 5. TensorBoard: the run's event files read back
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    # a final run (the default stage): six epochs of train and test top-1
    assert len(acc.Scalars("top1/train")) == 6 and len(acc.Scalars("top1/test")) == 6
    assert "cost/ppt" in acc.Tags()["scalars"]
    card = (run / "README.md").read_text()
    assert "cat, dog, owl" in card and f"vptlab predict {run}" in card
