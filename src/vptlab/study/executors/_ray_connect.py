"""Joining a Ray cluster, or starting vptlab's own local instance, and saying which it was.

Addresses mean what ``ray.init`` documents: ``HOST:PORT`` (the head's GCS address, the one ``ray start --head``
prints), ``auto`` (the cluster last started on this machine with ``ray start``, or ``RAY_ADDRESS``) and
``ray://HOST:PORT`` (Ray Client, port 10001 by default).  Without an address vptlab joins ``RAY_ADDRESS`` when it
is set, and otherwise starts a local instance of its own (``address="local"``), never one that happens to run on
the machine: a study does not land on someone else's cluster by accident.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from vptlab.errors import UserError
from vptlab.study.spec import ExecutorSpec


def connect(ray: Any, spec: ExecutorSpec) -> str:
    """``ray.init`` as the spec (or ``RAY_ADDRESS``) asks; returns what was joined, in words."""
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    env_address = os.environ.get("RAY_ADDRESS") or None
    if spec.address and spec.address != "local":
        address, source = spec.address, "from --address / executor.address"
        if address == "auto" and env_address:
            source += f", RAY_ADDRESS={env_address}"
    elif env_address and spec.address != "local":
        address, source = None, f"from RAY_ADDRESS={env_address}"  # Ray itself reads RAY_ADDRESS
    else:
        address, source = "local", "a new local instance"
        if spec.workers > 1:
            kwargs["num_cpus"] = spec.workers * spec.cpus_per_run
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
        _shutdown_quietly(ray)
        raise UserError(failure_message(address or env_address or "", source, err)) from None
    except Exception as err:  # ray.exceptions.AuthenticationError and kin: not builtin subclasses
        if type(err).__module__.startswith("ray"):
            _shutdown_quietly(ray)
            raise UserError(failure_message(address or env_address or "", source, err)) from None
        raise
    return joined(ray, address, env_address)


def joined(ray: Any, address: str | None, env_address: str | None) -> str:
    """``a local Ray instance started for this study (2 CPUs)`` or ``the Ray cluster at HOST:PORT (...)``."""
    res = ray.cluster_resources()
    cpus, gpus = int(res.get("CPU", 0)), float(res.get("GPU", 0))
    size = f"{cpus} CPUs" + (f", {gpus:g} GPUs" if gpus else "")
    if address == "local":
        return f"a local Ray instance started for this study ({size})"
    try:
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    except Exception:  # Ray Client may not answer this: the size is enough
        nodes = None
    where = address if address not in (None, "auto") else (env_address or _gcs_address(ray) or "auto")
    count = f"{nodes} node{'s' * (nodes != 1)}, " if nodes is not None else ""
    return f"the Ray cluster at {where} ({count}{size})"


def failure_message(address: str, source: str, err: BaseException) -> str:
    """One line: which address was tried, what Ray said, and what to check (token authentication included)."""
    said = " ".join(str(err).split())[:300] or type(err).__name__
    gcs = address.removeprefix("ray://")
    checks = (
        f"check that a Ray head runs there (`ray status --address {gcs}` on it), that the port is the one "
        "`ray start --head` printed (its --port, default 6379; ray://HOST:PORT is the Ray Client port, default "
        f"10001) and reachable from this machine, and that both sides run Ray {_ray_version()}"
    )
    return f"cannot join the Ray cluster at {address or '?'} ({source}): {said}; {checks}; {auth_hint()}"


def auth_hint() -> str:
    """What to check about Ray's token authentication, given this process's settings."""
    mode = (os.environ.get("RAY_AUTH_MODE") or "").lower()
    where = "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
    if mode == "token":
        return (f"token authentication is on here (RAY_AUTH_MODE=token): the token ({where}) must be the "
                "cluster's; `ray get-auth-token` on the head prints it")  # fmt: skip
    local_token = (Path.home() / ".ray" / "auth_token").is_file()
    found = " (this machine has one in ~/.ray/auth_token)" if local_token else ""
    return (
        "if the cluster uses token authentication (Ray turns it on for a head started where a token exists"
        f"{found}), set RAY_AUTH_MODE=token and give its token ({where}; `ray get-auth-token` on the head "
        "prints it): with an explicit address Ray sends no token unless told to"
    )


def _gcs_address(ray: Any) -> str | None:
    try:
        return ray.get_runtime_context().gcs_address
    except Exception:
        return None


def _ray_version() -> str:
    try:
        from importlib.metadata import version

        return version("ray")
    except Exception:
        return "of the same version"


def _shutdown_quietly(ray: Any) -> None:
    with contextlib.suppress(Exception):
        ray.shutdown()
