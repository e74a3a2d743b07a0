"""How hard is each synthetic task, and how far are its images from the upstream set?

For every task: a linear probe and a tiny CNN trained from scratch on raw pixels of train800val200 (1,000 images),
scored on test (2,000), to check that tasks are neither trivial nor impossible for a small model with 1,000
images; the Fréchet distance of the test images to the upstream set in a simple pixel feature space (8x8
downsampled RGB); and, when the bundled ``vptlab-tiny`` backbone is there, a linear probe on its frozen CLS
features and the Fréchet distance in that feature space (what the offline demo's FID uses): a preview of the
quadrants.  Also times generation (upstream set, one test split and one pool per task).

    .venv/bin/python bench/synthetic_difficulty.py                   # print the markdown tables
    .venv/bin/python bench/synthetic_difficulty.py --update BENCHMARKS.md   # and replace its section there
"""

from __future__ import annotations

import argparse
import platform
import re
import time
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from torch import nn

from vptlab.data.synthetic import SYNTHETIC_TASKS, TASKS, generate, upstream

SECTION = "## Synthetic benchmark"


def pixel_features(images: np.ndarray) -> np.ndarray:
    """8x8 area-downsampled RGB in [0, 1]: 192 numbers per image."""
    n, h = len(images), images.shape[1]
    x = images.reshape(n, 8, h // 8, 8, h // 8, 3).mean(axis=(2, 4)) / 255.0
    return x.reshape(n, -1)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def _tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0).sub(0.5).div(0.25)


def train_eval(model: nn.Module, train, test, epochs: int, lr: float, seed: int) -> float:
    """Adam, batch 64, cosine schedule; returns test top-1 (%)."""
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = train, test
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * -(-len(xtr) // 64)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xtr), generator=gen).split(64):
            loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(xte[i : i + 500]).argmax(1) for i in range(0, len(xte), 500)])
    return 100.0 * (pred == yte).float().mean().item()


def linear_probe(num_classes: int, size: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, num_classes))


def tiny_cnn(num_classes: int) -> nn.Module:
    def block(i: int, o: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(
        block(3, 32),
        block(32, 64),
        block(64, 96),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(96, num_classes),
    )


class Backbone:
    """vptlab-tiny's frozen pre-logit CLS features, and the upstream statistics in that space."""

    def __init__(self, upstream_images: np.ndarray) -> None:
        from vptlab.backbones import backbone_normalization, create_backbone
        from vptlab.data.base import to_tensor

        self.model = create_backbone("vptlab-tiny", num_classes=2).eval()
        self.mean, self.std = backbone_normalization(self.model)
        self._to_tensor = to_tensor
        self.upstream = self(upstream_images).numpy()

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> torch.Tensor:
        out = []
        for i in range(0, len(images), 500):
            x = self._to_tensor(images[i : i + 500], self.mean, self.std)
            out.append(self.model.forward_head(self.model.forward_features(x), pre_logits=True))
        return torch.cat(out)

    def probe_and_fd(self, train, test) -> tuple[float, float]:
        """Top-1 of a linear probe on standardised features (train -> test), and test's FD to upstream."""
        ftr, fte = self(train.images), self(test.images)
        mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
        probe = nn.Linear(ftr.shape[1], int(train.labels.max()) + 1)
        tr = ((ftr - mu) / sd, torch.from_numpy(train.labels))
        te = ((fte - mu) / sd, torch.from_numpy(test.labels))
        return train_eval(probe, tr, te, 60, 3e-3, 0), frechet(fte.numpy(), self.upstream)


def task_row(name: str, up_feats: np.ndarray, cnn_epochs: int, backbone: Backbone | None) -> dict:
    info = SYNTHETIC_TASKS[name]
    t0 = time.process_time()
    test = generate(name, "test")
    t_test = time.process_time() - t0
    train = generate(name, "train800val200")
    tr = (_tensor(train.images), torch.from_numpy(train.labels))
    te = (_tensor(test.images), torch.from_numpy(test.labels))
    row = {
        "task": name,
        "group": info.group,
        "objective": info.objective,
        "classes": info.num_classes,
        "mirrors": TASKS[name].mirrors.split(" (")[0],
        "chance": 100.0 / info.num_classes,
        "linear": train_eval(linear_probe(info.num_classes, 32), tr, te, 30, 1e-3, 0),
        "cnn": train_eval(tiny_cnn(info.num_classes), tr, te, cnn_epochs, 3e-3, 0),
        "fd": frechet(pixel_features(test.images), up_feats),
        "t_test": t_test,
    }
    if backbone is not None:
        row["tiny_probe"], row["tiny_fd"] = backbone.probe_and_fd(train, test)
    return row


def time_pools(names: list[str]) -> dict[str, float]:
    out = {}
    for name in names:
        t0 = time.process_time()
        generate(name, "pool")
        out[name] = time.process_time() - t0
    return out


def fd_split(rows: list[dict], key: str, label: str) -> str:
    """The tasks on each side of the largest gap in (log) FD: the low- and high-FID groups as measured."""
    ranked = sorted(rows, key=lambda r: r[key])
    logs = np.log([max(r[key], 1e-6) for r in ranked])
    cut = int(np.argmax(np.diff(logs))) + 1
    low, high = ranked[:cut], ranked[cut:]
    return (
        f"Largest gap in {label}: between {low[-1][key]:.2f} and {high[0][key]:.2f}. Below it: "
        f"{', '.join(r['task'] for r in low)}; above it: {', '.join(r['task'] for r in high)}."
    )


def markdown(rows: list[dict], floor: float, t_up: float, pools: dict[str, float], cnn_epochs: int) -> str:
    lines = [
        SECTION,
        "",
        "Produced by `bench/synthetic_difficulty.py` (generator version in `vptlab.data.synthetic.GENERATOR_VERSION`)"
        f" on {platform.processor() or platform.machine()}, torch threads 1, shared CPU.",
        "",
        "Difficulty: trained from scratch on raw pixels of train800val200 (1,000 images, 32x32), top-1 on test "
        f"(2,000). Linear: logistic regression, 30 epochs. CNN: 3 conv blocks (32-64-96), {cnn_epochs} epochs. "
        "FD: Fréchet distance of the test images to 4,000 upstream images in 8x8-pixel RGB space (the same "
        f"distance between two independent upstream samples: {floor:.2f}). vptlab-tiny: the bundled backbone "
        "frozen, a linear probe on its standardised CLS features (60 epochs), and the Fréchet distance of the test "
        "images' features to 4,000 upstream images' features (the offline demo's FID space).",
        "",
        "| task | group | objective | classes | mirrors | chance % | linear % | tiny CNN % | pixel FD | "
        "vptlab-tiny probe % | vptlab-tiny FD |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    has_tiny = all("tiny_fd" in r for r in rows)
    for r in rows:
        tiny = f"{r['tiny_probe']:.1f} | {r['tiny_fd']:.1f}" if has_tiny else "- | -"
        lines.append(
            f"| {r['task']} | {r['group']} | {r['objective']} | {r['classes']} | {r['mirrors']} | "
            f"{r['chance']:.1f} | {r['linear']:.1f} | {r['cnn']:.1f} | {r['fd']:.2f} | {tiny} |"
        )
    lines += ["", fd_split(rows, "fd", "pixel FD")]
    if has_tiny:
        lines += ["", fd_split(rows, "tiny_fd", "vptlab-tiny FD")]
    lines += [
        "",
        "Generation, CPU seconds of this process (numpy on one core; steadier than wall time on a shared "
        f"machine), 32x32: upstream set, 100 classes x 400 = 40,000 images: {t_up:.1f} s.",
        "",
        "| task | test (2,000) CPU s | pool (25,000) CPU s |",
        "|---|---:|---:|",
    ]
    for r in rows:
        pool = f"{pools[r['task']]:.1f}" if r["task"] in pools else "-"
        lines.append(f"| {r['task']} | {r['t_test']:.2f} | {pool} |")
    return "\n".join(lines) + "\n"


def update_section(path: Path, text: str) -> None:
    """Replace (or append) this script's section of ``path``, leaving every other section as it is."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    path.write_text(new.rstrip("\n") + "\n")


def _backbone(upstream_images: np.ndarray) -> Backbone | None:
    try:
        return Backbone(upstream_images)
    except Exception as err:  # the bench still runs without the bundled weights
        print(f"vptlab-tiny unavailable ({err}); its columns are left out")
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="*", default=list(SYNTHETIC_TASKS))
    ap.add_argument("--cnn-epochs", type=int, default=20)
    ap.add_argument("--no-pools", action="store_true", help="skip timing the 25,000-image pools")
    ap.add_argument(
        "--update", type=Path, help="replace the section in this markdown file (e.g. BENCHMARKS.md)"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.process_time()
    up = upstream()
    t_up = time.process_time() - t0
    # 4,000 images of the very set vptlab-tiny was pretrained on: the FD reference for both feature spaces.
    reference = up.images[np.random.default_rng(0).choice(len(up), 4000, replace=False)]
    up_feats = pixel_features(reference)
    floor = frechet(pixel_features(upstream(100, 40, seed=1).images), up_feats)
    backbone = _backbone(reference)
    rows = []
    for name in args.tasks:
        rows.append(task_row(name, up_feats, args.cnn_epochs, backbone))
        r = rows[-1]
        print(
            f"{name:10s} chance {r['chance']:5.1f} linear {r['linear']:5.1f} cnn {r['cnn']:5.1f} fd {r['fd']:6.2f}",
            flush=True,
        )
    pools = {} if args.no_pools else time_pools(args.tasks)
    text = markdown(rows, floor, t_up, pools, args.cnn_epochs)
    print(text)
    if args.update:
        update_section(args.update, text)


if __name__ == "__main__":
    main()
