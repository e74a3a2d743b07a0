"""A real Ray cluster of separate processes on this machine, for the ``ray`` tests.

``RayCluster`` starts a head (``ray start --head --block``) on free ports with its own temporary folder, and any
number of worker nodes (``ray start --address ... --block``), each in its own process group, so a test can kill
one node (SIGKILL to its group: raylet, object store, workers) the way a lost machine goes.  ``close`` ends every
process it started, by process group; it never runs ``ray stop``, which would end every Ray instance on the
machine (another test run's, or a user's cluster).

Each cluster uses token authentication with a token of its own (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN``):
``env()`` is what a driver needs to join it.  Nothing here reads or writes ``~/.ray``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")
# a lost node is noticed after period x threshold (Ray's defaults take about 15 s); the Ray Client proxy may wait
# longer than its 30 s for a client's own server to start on a loaded CI machine
HEAD_ENV = {
    "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "180",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_initial_delay_ms": "0",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RayCluster:
    """A head and worker nodes started with ``ray start`` as separate process groups of this machine."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        # unix socket paths must stay short: a short folder under /tmp, not pytest's deep tmp_path
        self.tmp = Path(tempfile.mkdtemp(prefix="vr-", dir="/tmp"))
        self.port, self.client_port = free_port(), free_port()
        self.token = secrets.token_hex(16)
        self.extra_env = dict(extra_env or {})
        self.nodes: dict[str, subprocess.Popen] = {}
        self.address = f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment a driver (or node) needs to join this cluster and only it."""
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH")}
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token, RAY_USAGE_STATS_ENABLED="0")
        env.update(self.extra_env)
        return env

    def start_head(self, num_cpus: int) -> None:
        args = ["--head", f"--port={self.port}", f"--ray-client-server-port={self.client_port}",
                f"--dashboard-agent-listen-port={free_port()}",
                "--include-dashboard=false", f"--temp-dir={self.tmp}"]  # fmt: skip
        self._start("head", num_cpus, args, HEAD_ENV)

    def add_node(self, name: str, num_cpus: int) -> None:
        for attempt in (1, 2):  # on a loaded machine the first try can miss the GCS's own timeout
            args = [f"--address={self.address}", f"--dashboard-agent-listen-port={free_port()}"]
            try:
                self._start(name, num_cpus, args, {})
                return
            except (TimeoutError, RuntimeError):
                proc = self.nodes.pop(name)
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                if attempt == 2:
                    raise

    def _start(self, name: str, num_cpus: int, args: list[str], env: dict[str, str]) -> None:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        cmd = [RAY, "start", *args, f"--num-cpus={num_cpus}", "--num-gpus=0", "--disable-usage-stats",
               "--block"]  # fmt: skip
        env = {**self.env(), **env, "VPTLAB_TEST_NODE": name}
        self.nodes[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)  # fmt: skip
        self._wait_started(name)

    def _wait_started(self, name: str, timeout: float = 90.0) -> None:
        """Until ``ray start`` says the node runs (it prints that once the node has registered with the head)."""
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in self.log(name):
            if self.nodes[name].poll() is not None:
                raise RuntimeError(f"ray node {name} exited: {self.log(name)[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"ray node {name} not up after {timeout} s: {self.log(name)[-2000:]}")
            time.sleep(0.2)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def kill_node(self, name: str) -> None:
        """SIGKILL a node's whole process group: what a lost machine looks like to the rest of the cluster."""
        proc = self.nodes.pop(name)
        _killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def close(self) -> None:
        """End every node this cluster started (worker nodes first), then remove its folder."""
        for name in sorted(self.nodes, key=lambda n: n == "head"):
            proc = self.nodes.pop(name)
            _killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
            _killpg(proc.pid, signal.SIGKILL)  # stragglers of the group
        for pid in _pids_mentioning(str(self.tmp)):  # workers (they have process groups of their own)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", str(self.tmp)], check=False)


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line names ``text`` (this cluster's own temporary folder)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
    return [pid for pid in pids if pid != os.getpid()]


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
