"""Checking a ``--device`` the user named before anything runs on it.

torch accepts ``"tpu"`` only to fail deep inside with a RuntimeError, and ``"cuda"`` on a machine without a GPU
fails at the first ``.to(device)``, after a run folder exists.  Both are user mistakes: one line, exit 2.
"""

from __future__ import annotations

from vptlab.errors import UserError

VALID = "cpu, cuda, cuda:N or mps"


def check_device(name: str | None, flag: str = "--device", *, here: bool = True) -> None:
    """Raise :class:`UserError` unless ``name`` is a torch device (``None``/``"auto"``: choose later).

    ``here``: the device must also exist on this machine (not for a Ray driver whose runs go elsewhere).
    """
    if name is None or name == "auto":
        return
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"{flag} must be {VALID}, got {name!r}")
    if here:
        _require_present(device, name, flag)


def _require_present(device, name: str, flag: str) -> None:
    import torch

    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"{flag} {name}: no CUDA device on this machine; use --device cpu")
        if device.index is not None and device.index >= count:
            raise UserError(
                f"{flag} {name}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"{flag} {name}: MPS is not available on this machine; use --device cpu")
