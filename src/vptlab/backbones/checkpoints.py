"""Loading local checkpoint files into a timm backbone (ViT, Swin, ResNet, ConvNeXt).

Three formats: Google's ``.npz`` (the ``ViT-B_16.npz`` layout of google-research/vision_transformer, which the
reference code loads), ``.safetensors``, and ``.pth``/``.pt`` (loaded with ``weights_only=True``: a checkpoint is
data, never code).  Inside a ``.pth``/``.safetensors`` the layout is recognised (MAE, MoCo v3, DINO, DINOv2,
DeiT, CLIP, Swin, ConvNeXt, timm: :mod:`vptlab.backbones.layouts`).  Every tensor's shape is checked before
anything is copied; the first mismatch is named.  The checkpoint's classifier is never loaded: each task gets a
fresh head.  :func:`load_checkpoint` returns a :class:`LoadReport` (layout, tensors loaded, missing, dropped),
also kept on the model and recorded in each run's ``result.json``.
"""

from __future__ import annotations

import math
import pickle
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer

from vptlab.errors import UserError

_SKIPPED_PREFIXES = ("pre_logits.", "head_drop.")  # besides the model's own classifier
_OPTIONAL_PREFIXES = (
    "fc_norm.",
)  # a pooled head's norm: kept at its init when the file has none (MAE pretrain)
_WRAPPER_KEYS = ("state_dict", "model", "model_state", "module")
_NAME_PREFIXES = ("module.", "model.", "backbone.", "encoder.")
REPORT_ATTR = "vptlab_checkpoint"


@dataclass
class LoadReport:
    """What a checkpoint gave the model: its layout, how many tensors loaded, which were missing or dropped."""

    source: str
    layout: str
    loaded: int
    missing: list[str] = field(default_factory=list)  # model tensors the file lacks (kept at their init)
    unexpected: list[str] = field(default_factory=list)  # file tensors that are not part of the backbone
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        parts = [f"{self.source}: {self.layout} layout, {self.loaded} tensors loaded"]
        if self.missing:
            parts.append(f"missing (kept at init): {', '.join(self.missing)}")
        if self.unexpected:
            more = f" (+{len(self.unexpected) - 5} more)" if len(self.unexpected) > 5 else ""
            parts.append(f"not loaded: {', '.join(self.unexpected[:5])}{more}")
        return "; ".join(parts + self.notes)


def load_checkpoint(model: torch.nn.Module, path: str | Path) -> LoadReport:
    """Load a local checkpoint into ``model`` (in place), resampling position embeddings if the grid differs."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path}: no such file")
    converted = read_converted(path, model)
    report = apply_state_dict(
        model, converted.state, source=str(path), layout=converted.layout, dropped=converted.dropped
    )
    report.notes.extend(converted.notes)
    setattr(model, REPORT_ATTR, report.as_dict())
    return report


def read_state_dict(path: Path, model: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
    """A timm-named state dict from any supported file."""
    return read_converted(path, model).state


def read_converted(path: Path, model: torch.nn.Module | None = None):
    """The file's tensors in timm names, with its recognised layout (:class:`vptlab.backbones.layouts.Converted`)."""
    from vptlab.backbones.layouts import Converted, convert

    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            if not zipfile.is_zipfile(path):  # else np.load guesses "pickle" and suggests loading it unsafely
                raise UserError(
                    f"checkpoint {path}: not a .npz archive; is it truncated or of another format?"
                )
            with np.load(path, allow_pickle=False) as npz:
                return Converted(npz_to_timm({k: npz[k] for k in npz.files}, source=str(path)), "npz")
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            raw = load_file(str(path))
        elif suffix in (".pth", ".pt", ".bin", ".tar"):
            raw = load_torch_weights(path)
        else:
            raw = None
        if raw is not None:
            if model is None:
                return Converted(_strip_names(_unwrap(raw, path)), "timm")
            return convert(raw, model, str(path))
    except UserError:
        raise
    except _READ_ERRORS as err:
        raise _unreadable("checkpoint", path, err) from err
    raise UserError(f"checkpoint {path}: unknown format {suffix!r}; use .npz, .safetensors, .pth or .pt")


def load_torch_weights(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load`` of a ``.pth``/``.pt`` file as data only (``weights_only=True``): pickled code is refused
    with one clear line, never run, and never answered with torch's advice to load it unsafely."""
    try:
        with (
            warnings.catch_warnings()
        ):  # torch's protocol warnings would add lines before the one that matters
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UserError(
            f"{what} {path}: refused by the weights-only loader ({_unpickler_reason(err)}); vptlab never runs "
            "code from a weights file: if the file is whole, save its weights as .safetensors or a state dict of tensors"
        ) from None
    except _READ_ERRORS as err:
        raise _unreadable(what, path, err) from err


_READ_ERRORS = (OSError, ValueError, RuntimeError, EOFError, KeyError, zipfile.BadZipFile, SafetensorError)


def _unreadable(what: str, path: Path, err: BaseException) -> UserError:
    return UserError(
        f"{what} {path}: cannot be read ({type(err).__name__}: {_first_line(err)}); "
        "is it truncated or of another format?"
    )


def apply_state_dict(
    model: torch.nn.Module,
    state: dict[str, torch.Tensor],
    source: str,
    layout: str = "timm",
    dropped: list[str] | tuple[str, ...] = (),
) -> LoadReport:
    """Copy ``state`` into ``model`` after checking every name and shape (classifier excluded)."""
    from vptlab.backbones.create import classifier_name

    skip = (*_SKIPPED_PREFIXES, classifier_name(model) + ".")
    if isinstance(model, VisionTransformer):
        skip = (*skip, "head.")
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(skip)}
    unexpected = sorted(dropped) + sorted(k for k in state if k.startswith(skip))
    state = {k: v for k, v in state.items() if not k.startswith(skip)}
    missing = sorted(k for k in own if k.startswith(_OPTIONAL_PREFIXES) and k not in state)
    own = {k: v for k, v in own.items() if k not in missing}
    notes = []
    pooled_norm = sorted(k for k in state if k.startswith(_OPTIONAL_PREFIXES) and k not in own)
    if pooled_norm:  # fine-tuned with a pooled head (MAE): this model pools another way
        unexpected += pooled_norm
        state = {k: v for k, v in state.items() if k not in pooled_norm}
        notes.append(
            "the file's fc_norm is not used: this model's head has none (global_pool=avg would use it)"
        )
    if (
        isinstance(model, VisionTransformer)
        and "norm.weight" not in own
        and not isinstance(model.fc_norm, torch.nn.Identity)
    ):
        final = sorted(k for k in state if k.startswith("norm."))
        if final:  # a pooled head replaces the final norm (MAE fine-tuning drops the pretrained one likewise)
            unexpected += final
            state = {k: v for k, v in state.items() if k not in final}
            notes.append("the file's final norm is not used: this model pools with fc_norm instead")
    if isinstance(model, VisionTransformer) and _needs_resampling(
        state.get("pos_embed"), own.get("pos_embed")
    ):
        state["pos_embed"] = _resample_pos_embed(model, state["pos_embed"], source)
    for name, tensor in own.items():
        if name not in state:
            raise UserError(f"checkpoint {source}: tensor {name!r} is missing (the model needs it)")
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise UserError(
                f"checkpoint {source}: tensor {name!r} has shape {tuple(state[name].shape)}, "
                f"the model expects {tuple(tensor.shape)}"
            )
    bad = next((name for name in own if not torch.isfinite(state[name]).all()), None)
    if bad is not None:
        raise UserError(
            f"checkpoint {source}: tensor {bad!r} holds NaN or infinite values; the file is corrupt"
        )
    extra = sorted(set(state) - set(own))
    if extra:
        raise UserError(
            f"checkpoint {source}: tensor {extra[0]!r} does not exist in the model "
            f"({len(extra)} unexpected tensors; is it a different architecture?)"
        )
    model.load_state_dict({**model.state_dict(), **{k: v.to(own[k].dtype) for k, v in state.items()}})
    return LoadReport(source, layout, len(state), missing, unexpected, notes)


def _needs_resampling(theirs: torch.Tensor | None, ours: torch.Tensor | None) -> bool:
    """Same width, another number of positions: the checkpoint was trained at another image size."""
    if theirs is None or ours is None or theirs.ndim != 3:
        return False
    return theirs.shape[-1] == ours.shape[-1] and theirs.shape[1] != ours.shape[1]


def _resample_pos_embed(model: VisionTransformer, pos_embed: torch.Tensor, source: str) -> torch.Tensor:
    prefix = 0 if model.no_embed_class else model.num_prefix_tokens
    grid = int(math.isqrt(pos_embed.shape[1] - prefix))
    if grid * grid != pos_embed.shape[1] - prefix or pos_embed.shape[-1] != model.embed_dim:
        raise UserError(
            f"checkpoint {source}: tensor 'pos_embed' has shape {tuple(pos_embed.shape)}, "
            f"which is not a square grid of width {model.embed_dim} to resample"
        )
    return resample_abs_pos_embed(
        pos_embed.float(),
        new_size=list(model.patch_embed.grid_size),
        old_size=[grid, grid],
        num_prefix_tokens=prefix,
    )


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(obj, dict) and not _is_tensor_dict(obj):
        key = next((k for k in _WRAPPER_KEYS if k in obj), None)
        if key is None:
            raise UserError(
                f"checkpoint {path}: a dict without tensors; expected a state dict "
                f"(or one under {', '.join(_WRAPPER_KEYS)})"
            )
        obj = obj[key]
    if not isinstance(obj, dict):
        raise UserError(f"checkpoint {path}: holds a {type(obj).__name__}, expected a state dict of tensors")
    return obj


def _is_tensor_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _strip_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in _NAME_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


_TORCH_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation")


def _unpickler_reason(err: BaseException) -> str:
    """The weights-only unpickler's own reason ('Trying to load unsupported GLOBAL posix.system ...'), without
    torch's paragraphs around it (one of which suggests ``weights_only=False``)."""
    text = str(err).replace("WeightsUnpickler error:", "\n")
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(_TORCH_BOILERPLATE)
    ]
    return (lines[0][:160] if lines else "not a plain tensor file").rstrip(".")


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0][:200]


# --- Google's ViT .npz layout -------------------------------------------------------------------------------

_NPZ_PREFIXES = ("", "opt/target/", "params/")


def npz_to_timm(w: dict[str, np.ndarray], source: str) -> dict[str, torch.Tensor]:
    """Convert the google-research/vision_transformer layout to timm names and torch layouts."""
    prefix = next((p for p in _NPZ_PREFIXES if f"{p}embedding/kernel" in w), None)
    if prefix is None:
        raise UserError(f"checkpoint {source}: not a ViT .npz in Google's layout (no 'embedding/kernel')")
    w = {k[len(prefix) :]: v for k, v in w.items() if k.startswith(prefix)}
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
    state = {
        "patch_embed.proj.weight": t(w["embedding/kernel"].transpose(3, 2, 0, 1)),
        "patch_embed.proj.bias": t(w["embedding/bias"]),
        "cls_token": t(w["cls"]),
        "pos_embed": t(w["Transformer/posembed_input/pos_embedding"]),
        "norm.weight": t(w["Transformer/encoder_norm/scale"]),
        "norm.bias": t(w["Transformer/encoder_norm/bias"]),
    }
    depth = len({k.split("/")[1] for k in w if k.startswith("Transformer/encoderblock_")})
    for i in range(depth):
        state.update(_npz_block(w, f"Transformer/encoderblock_{i}/", f"blocks.{i}.", t))
    return state


def _npz_block(w: dict[str, np.ndarray], src: str, dst: str, t) -> dict[str, torch.Tensor]:
    attn = f"{src}MultiHeadDotProductAttention_1/"
    dim = w[f"{attn}query/kernel"].shape[0]
    qkv_w = [w[f"{attn}{n}/kernel"].reshape(dim, -1).T for n in ("query", "key", "value")]
    qkv_b = [w[f"{attn}{n}/bias"].reshape(-1) for n in ("query", "key", "value")]
    return {
        f"{dst}norm1.weight": t(w[f"{src}LayerNorm_0/scale"]),
        f"{dst}norm1.bias": t(w[f"{src}LayerNorm_0/bias"]),
        f"{dst}attn.qkv.weight": t(np.concatenate(qkv_w)),
        f"{dst}attn.qkv.bias": t(np.concatenate(qkv_b)),
        f"{dst}attn.proj.weight": t(w[f"{attn}out/kernel"].reshape(-1, dim).T),
        f"{dst}attn.proj.bias": t(w[f"{attn}out/bias"]),
        f"{dst}norm2.weight": t(w[f"{src}LayerNorm_2/scale"]),
        f"{dst}norm2.bias": t(w[f"{src}LayerNorm_2/bias"]),
        f"{dst}mlp.fc1.weight": t(w[f"{src}MlpBlock_3/Dense_0/kernel"].T),
        f"{dst}mlp.fc1.bias": t(w[f"{src}MlpBlock_3/Dense_0/bias"]),
        f"{dst}mlp.fc2.weight": t(w[f"{src}MlpBlock_3/Dense_1/kernel"].T),
        f"{dst}mlp.fc2.bias": t(w[f"{src}MlpBlock_3/Dense_1/bias"]),
    }
