"""Study presets by name from anywhere, command-line overrides of a spec's data and weights, placeholder checks.

``vptlab study run paper --data vtab1k:/data --checkpoint ViT-B_16.npz`` works from any folder: a spec argument
that is not a file but names a packaged preset (``paper``, ``one-shot``, ``data-size``, ``demo``, with or
without ``.toml``) reads the preset.  A preset ships with placeholder paths (``/path/to/...``); a study whose data
source or checkpoint still holds one is refused before anything runs, naming the key to set and the flag to pass.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

from vptlab.errors import UserError
from vptlab.study.spec import StudySpec, load_spec

PLACEHOLDER = "/path/to/"


def preset_names() -> list[str]:
    """The packaged presets, by name."""
    folder = resources.files("vptlab") / "studies"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def resolve_spec_path(spec: str | Path) -> Path:
    """``spec`` itself if it is a file, else the packaged preset it names; a :class:`UserError` lists both."""
    path = Path(spec)
    if path.is_file():
        return path
    name = path.name[: -len(".toml")] if path.name.endswith(".toml") else path.name
    if path.parent == Path(".") and name in preset_names():
        return Path(str(resources.files("vptlab") / "studies" / f"{name}.toml"))
    raise UserError(
        f"{spec}: study spec not found; give a .toml/.yaml file or a preset name ({', '.join(preset_names())})"
    )


def load_study(
    spec: str | Path,
    *,
    data: str | None = None,
    checkpoint: str | None = None,
    skip_bad_images: bool | None = None,
    check: bool = True,
) -> StudySpec:
    """Load a spec (file or preset name), apply the overrides, and refuse placeholders left in it."""
    path = resolve_spec_path(spec)
    loaded = apply_overrides(
        load_spec(path), data=data, checkpoint=checkpoint, skip_bad_images=skip_bad_images
    )
    if check:
        check_placeholders(loaded, path.name)
    return loaded


def apply_overrides(
    spec: StudySpec,
    *,
    data: str | None = None,
    checkpoint: str | None = None,
    skip_bad_images: bool | None = None,
) -> StudySpec:
    """The spec with ``[data] source``, ``[backbone] checkpoint`` and ``[data] skip_bad_images`` replaced."""
    changes = {"source": data, "skip_bad_images": skip_bad_images}
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes:
        spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data, **changes))
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise UserError(f"--checkpoint {checkpoint}: no such file")
        spec = dataclasses.replace(spec, backbone=dataclasses.replace(spec.backbone, checkpoint=checkpoint))
    return spec


def check_placeholders(spec: StudySpec, name: str) -> None:
    """A preset's ``/path/to/...`` still in place: say which key to set, or which flag to pass."""
    if PLACEHOLDER in spec.data.source:
        raise UserError(
            f"{name}: [data] source is the placeholder {spec.data.source!r}; set [data] source to your data "
            '(e.g. "vtab1k:/data/vtab-1k") or pass --data vtab1k:/data/vtab-1k'
        )
    if spec.backbone.checkpoint and PLACEHOLDER in spec.backbone.checkpoint:
        raise UserError(
            f"{name}: [backbone] checkpoint is the placeholder {spec.backbone.checkpoint!r}; set it to your "
            "weights file or pass --checkpoint PATH"
        )
