"""The reference code's data path (KMnP/vpt, ChengHan111/VPT-or-FT), shared by the benchmarks that compare to it."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from vptlab.data import IMAGENET_MEAN, IMAGENET_STD


class ReferenceDataset(Dataset):
    """What the reference code does: open, convert, resize and normalise each image on every access."""

    def __init__(self, folder: Path, split: str, size: int) -> None:
        rows = [line.rsplit(maxsplit=1) for line in (folder / f"{split}.txt").read_text().splitlines()]
        self.items = [(folder / path, int(label)) for path, label in rows]
        self.transform = transforms.Compose(
            [
                transforms.Resize((size, size), interpolation=transforms.InterpolationMode.BILINEAR),
                transforms.ToTensor(),
                transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[i]
        with Image.open(path) as img:
            return self.transform(img.convert("RGB")), label
