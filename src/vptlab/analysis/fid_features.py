"""Feature extractors for FID: the standard InceptionV3 pool3 network, or a vptlab backbone's CLS features.

``inception`` is the network every published FID uses (pytorch-fid's port of the TF 2015 Inception, 2048-d pool3
features), so its numbers are comparable with the paper's Figure 3.  Its weights come from pytorch-fid's usual
download (cached by torch hub) or from a local file; offline without the file is a clear error.  ``backbone``
uses any vptlab backbone's pre-logit CLS features and works offline: numbers are only comparable with other
numbers from the same backbone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch
import torch.nn.functional as F

from vptlab.errors import UserError

FEATURE_KINDS = ("inception", "backbone")
DEFAULT_BACKBONE = "vptlab-tiny"
_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"


def _batches(images: np.ndarray, batch_size: int):
    for start in range(0, len(images), batch_size):
        yield np.array(images[start : start + batch_size])  # a writable copy (memmaps are read-only)


def _unit_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1], as torchvision's ``ToTensor`` gives pytorch-fid."""
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255.0)


def _file_key(path: Path) -> str:
    """A short content hash of a weights file, so cached statistics follow the weights, not the file name."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


@dataclass
class InceptionFeatures:
    """pytorch-fid's ``InceptionV3`` (FID weights, pool3, 2048-d); images are resized to 299 inside it."""

    weights: str | Path | None = None
    device: str = "cpu"
    batch_size: int = 50
    key: str = field(init=False)
    _model: torch.nn.Module | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.weights is not None:
            self.weights = Path(self.weights)
            if not self.weights.is_file():
                raise UserError(f"--inception-weights {self.weights}: no such file")
            self.key = f"inception-pool3-{_file_key(self.weights)}"
        else:
            self.key = "inception-pool3-fid"

    def _load(self) -> torch.nn.Module:
        if self._model is None:
            self._model = _build_inception(self.weights).to(self.device).eval()
        return self._model

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        model, device = self._load(), torch.device(self.device)
        out = [
            model(_unit_tensor(b, device))[0].squeeze(3).squeeze(2).cpu().numpy()
            for b in _batches(images, self.batch_size)
        ]
        return np.concatenate(out).astype(np.float64)


def _build_inception(weights: Path | None) -> torch.nn.Module:
    """pytorch-fid's network, with its weights from a local file if given, else from its usual URL."""
    try:
        from pytorch_fid import inception as pfi
    except ImportError as err:
        raise UserError("--features inception needs pytorch-fid: pip install 'vptlab[fid]'") from err
    download = pfi.load_state_dict_from_url
    if weights is not None:
        # pytorch-fid always fetches by URL; hand it the local file instead (weights only, no pickled code).
        from vptlab.backbones.checkpoints import load_torch_weights

        pfi.load_state_dict_from_url = lambda *a, **k: load_torch_weights(weights, "FID Inception weights")
    try:
        return pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    except (URLError, OSError, ConnectionError) as err:
        raise UserError(
            f"cannot download the FID Inception weights ({err.__class__.__name__}); offline, pass "
            f"--inception-weights PATH to a local {_INCEPTION_FILE} (from {pfi.FID_WEIGHTS_URL}), "
            "or use --features backbone"
        ) from err
    except (RuntimeError, KeyError, ValueError) as err:
        raise UserError(f"--inception-weights {weights}: not the FID Inception weights ({err})") from err
    finally:
        pfi.load_state_dict_from_url = download


@dataclass
class BackboneFeatures:
    """A backbone's pre-logit features at its pretrained weights, pooled as the backbone designs its head (CLS
    token after the final norm for a class-token ViT; average + fc_norm, Swin's and ConvNets' average pooling)."""

    name: str = DEFAULT_BACKBONE
    checkpoint: str | Path | None = None
    device: str = "cpu"
    batch_size: int = 64
    key: str = field(init=False)
    _model: torch.nn.Module | None = field(default=None, init=False, repr=False)
    _norm: tuple | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.checkpoint and not Path(self.checkpoint).is_file():
            raise UserError(f"--checkpoint {self.checkpoint}: no such file")
        weights = Path(self.checkpoint) if self.checkpoint else _bundled_weights(self.name)
        # cached statistics follow the weights' content: re-pretraining the tiny backbone invalidates them
        suffix = f"-{_file_key(weights)}" if weights is not None else ""
        self.key = f"backbone-{self.name}{suffix}"

    def _load(self) -> torch.nn.Module:
        if self._model is None:
            from vptlab.backbones import backbone_normalization, create_backbone

            model = create_backbone(self.name, num_classes=2, pretrained=True, checkpoint=self.checkpoint)
            self._model = model.to(self.device).eval()
            self._norm = backbone_normalization(model)
        return self._model

    @property
    def image_size(self) -> int:
        """The backbone's input size: images are loaded (or resized) to it (known without building it)."""
        embed = getattr(self._model, "patch_embed", None)
        if self._model is None or embed is None or getattr(embed, "img_size", None) is None:
            from vptlab.backbones import default_image_size

            return default_image_size(self.name)  # a ConvNet takes any size: its pretraining size
        size = embed.img_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    def describe(self) -> str:
        """Which backbone these features come from and how they are pooled (shown beside every FID)."""
        from vptlab.backbones.create import describe_backbone

        info = describe_backbone(self._load())
        weights = f", weights {self.checkpoint}" if self.checkpoint else ""
        return f"{self.name} ({info['family']}, {info['global_pool']} pooling, pre-logit features{weights})"

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        model, device = self._load(), torch.device(self.device)
        size = self.image_size
        mean = torch.tensor(self._norm[0], device=device).view(1, 3, 1, 1)
        std = torch.tensor(self._norm[1], device=device).view(1, 3, 1, 1)
        out = []
        for batch in _batches(images, self.batch_size):
            x = _unit_tensor(batch, device)
            if x.shape[-1] != size or x.shape[-2] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            feats = model.forward_head(model.forward_features((x - mean) / std), pre_logits=True)
            out.append(feats.float().cpu().numpy())
        return np.concatenate(out).astype(np.float64)


def _bundled_weights(name: str) -> Path | None:
    """The packaged weights file of a bundled backbone (vptlab-tiny), if present."""
    from vptlab.backbones import TINY_NAME, tiny_weights_path

    path = tiny_weights_path() if name == TINY_NAME else None
    return path if path is not None and path.is_file() else None


def make_extractor(
    kind: str,
    *,
    backbone: str = DEFAULT_BACKBONE,
    checkpoint: str | Path | None = None,
    inception_weights: str | Path | None = None,
    device: str = "cpu",
) -> InceptionFeatures | BackboneFeatures:
    """The feature extractor named ``kind`` (``inception`` or ``backbone``)."""
    if kind == "inception":
        return InceptionFeatures(inception_weights, device)
    if kind == "backbone":
        return BackboneFeatures(backbone, checkpoint, device)
    raise UserError(f"unknown feature type {kind!r}; choose one of {', '.join(FEATURE_KINDS)}")


def extractor_image_size(extractor: InceptionFeatures | BackboneFeatures) -> int:
    """The size images should be decoded at for this extractor (Inception resizes to 299 itself)."""
    return 299 if isinstance(extractor, InceptionFeatures) else extractor.image_size
