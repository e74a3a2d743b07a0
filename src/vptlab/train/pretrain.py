"""``vptlab pretrain``: pretrain a small ViT on the synthetic upstream set and write a weights file + model card.

No natural-image weights can be downloaded offline, so the bundled ``vptlab-tiny`` is pretrained here, by
classification on FractalDB-style formula-driven images (Kataoka et al. 2020: a published way to pretrain ViTs
without natural images).  Prompt tuning then has a real, frozen representation to work with, and the downstream
synthetic tasks sit at measurable distances (FID) from this pretraining data, as the paper's quadrants need.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer

import vptlab
from vptlab._io import atomic_path, atomic_write_json, atomic_write_text
from vptlab._progress import progress
from vptlab.backbones.create import TINY_NAME
from vptlab.backbones.recipe import PretrainConfig
from vptlab.data.base import IMAGENET_MEAN, IMAGENET_STD, ImageSet
from vptlab.train.loop import Precision, evaluate, train_epoch
from vptlab.train.optim import Schedule, build_optimizer


def pretrain(
    cfg: PretrainConfig,
    out_dir: str | Path,
    *,
    name: str = TINY_NAME,
    device: str | None = None,
    show_progress: bool | None = None,
) -> dict:
    """Train, evaluate on held-out upstream images, write ``<name>.safetensors`` and the model card."""
    from vptlab.data.synthetic.upstream import upstream

    out = Path(out_dir)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    started = time.perf_counter()
    data = upstream(
        num_classes=cfg.classes, per_class=cfg.per_class, image_size=cfg.image_size, seed=cfg.data_seed
    )
    train, held_out = _split(data, cfg.holdout, cfg.seed)
    torch.manual_seed(cfg.seed)
    model = VisionTransformer(**cfg.arch, num_classes=cfg.classes).to(dev)
    history = _fit(model, train, held_out, cfg, dev, show_progress)
    weights = {
        k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith("head.")
    }
    with atomic_path(out / f"{name}.safetensors") as tmp:
        save_file(weights, str(tmp), metadata={"format": "pt", "arch": json.dumps(cfg.arch)})
    card = _model_card(
        cfg, name, out, data, len(train), len(held_out), history, time.perf_counter() - started, dev
    )
    atomic_write_json(out / f"{name}.json", card)
    atomic_write_text(out / f"{name}.md", _card_markdown(card))
    return card


def _split(data: ImageSet, holdout: float, seed: int) -> tuple[ImageSet, ImageSet]:
    order = np.random.default_rng(seed).permutation(len(data))
    cut = int(round(len(data) * holdout))
    return data.subset(np.sort(order[cut:]), "upstream train"), data.subset(
        np.sort(order[:cut]), "upstream held-out"
    )


def _fit(
    model: VisionTransformer,
    train: ImageSet,
    held_out: ImageSet,
    cfg: PretrainConfig,
    dev: torch.device,
    show_progress: bool | None,
) -> list[dict]:
    opt, _ = build_optimizer(model, "adamw", cfg.lr, cfg.wd)  # the runs' grouping: no decay on 1-D, pos, cls
    steps = -(-len(train) // cfg.batch_size)
    schedule = Schedule(opt, cfg.lr, "step", cfg.warmup_epochs, cfg.epochs, steps)
    precision = Precision.choose(dev, "auto")
    history = []
    with progress(total=cfg.epochs * steps, desc="pretrain", unit="step", enabled=show_progress) as bar:
        for epoch in range(cfg.epochs):
            model.train()
            s = train_epoch(
                model,
                train,
                epoch=epoch,
                seed=cfg.seed,
                batch_size=cfg.batch_size,
                optimizer=opt,
                set_lr=schedule.apply,
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
                precision=precision,
                on_step=bar.update,
                augment=flip_and_shift,
                label_smoothing=cfg.label_smoothing,
            )
            row = {"epoch": epoch, "train_loss": s.loss, "train_top1": s.top1}
            if epoch == cfg.epochs - 1 or epoch % 5 == 4:
                e = evaluate(model, held_out, mean=IMAGENET_MEAN, std=IMAGENET_STD, precision=precision)
                row.update(heldout_loss=e.loss, heldout_top1=e.top1)
            bar.set_postfix({k: f"{v:.1f}" for k, v in row.items() if k.endswith("top1")})
            history.append(row)
    return history


def flip_and_shift(x: torch.Tensor, max_shift: int = 4) -> torch.Tensor:
    """Random horizontal flips and translations (reflect-padded), per image."""
    n, _, h, w = x.shape
    flip = torch.rand(n, device=x.device) < 0.5
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    padded = torch.nn.functional.pad(x, (max_shift,) * 4, mode="reflect")
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n)).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def _model_card(
    cfg: PretrainConfig,
    name: str,
    out: Path,
    data: ImageSet,
    n_train: int,
    n_held: int,
    history: list[dict],
    seconds: float,
    dev: torch.device,
) -> dict:
    last = history[-1]
    return {
        "name": name,
        "architecture": {
            "class": "timm VisionTransformer",
            **cfg.arch,
            "class_token": True,
            "params": _count_params(cfg),
        },
        "data": {
            "set": "synthetic upstream (FractalDB-style IFS fractals)",
            "classes": cfg.classes,
            "images": len(data),
            "train": n_train,
            "held_out": n_held,
            "manifest": data.manifest,
            "normalisation": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD},
        },
        "recipe": dataclasses.asdict(cfg),
        "upstream_top1_heldout": round(last["heldout_top1"], 2),
        "upstream_loss_heldout": round(last["heldout_loss"], 4),
        "history": history,
        "seconds": round(seconds, 1),
        "command": cfg.command(out),
        "environment": {
            "vptlab": vptlab.__version__,
            "torch": torch.__version__,
            "device": str(dev),
            "machine": platform.machine(),
            "threads": torch.get_num_threads(),
        },
    }


def _count_params(cfg: PretrainConfig) -> int:
    return sum(p.numel() for n, p in VisionTransformer(**cfg.arch, num_classes=0).named_parameters())


def _card_markdown(card: dict) -> str:
    a, d = card["architecture"], card["data"]
    return (
        f"# {card['name']}\n\n"
        f"A {a['depth']}-layer ViT (width {a['embed_dim']}, {a['num_heads']} heads, patch {a['patch_size']}, "
        f"{a['img_size']}x{a['img_size']} input, class token; {a['params']:,} parameters) pretrained by "
        f"vptlab on its synthetic upstream set: {d['classes']} classes of formula-driven fractal images "
        f"(FractalDB-style), {d['train']:,} training images.\n\n"
        f"- held-out upstream top-1: **{card['upstream_top1_heldout']}%** on {d['held_out']:,} unseen images "
        f"of the same classes\n"
        f"- recipe: {card['recipe']['epochs']} epochs, AdamW lr {card['recipe']['lr']}, wd "
        f"{card['recipe']['wd']}, batch {card['recipe']['batch_size']}, label smoothing "
        f"{card['recipe']['label_smoothing']}, flips + translations, seed {card['recipe']['seed']}\n"
        f"- trained in {card['seconds']:.0f} s on {card['environment']['device']} "
        f"({card['environment']['threads']} threads), torch {card['environment']['torch']}\n"
        f"- reproduce: `{card['command']}`\n\n"
        "It is a miniature stand-in for ViT-B/16 ImageNet-21k, made so the whole study runs offline; "
        "its numbers say nothing about ImageNet-scale models.\n"
    )
