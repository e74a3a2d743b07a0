"""A method from another package, through the ``vptlab.methods`` entry point group.

The test installs a plugin package into a temporary folder the way pip would (a module and its
``*.dist-info`` with ``entry_points.txt``) and runs vptlab in a fresh process with that folder on the path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# The example of docs/methods.md, as a package would ship it.
PLUGIN = '''
"""Top blocks: the last k transformer blocks and the head train; the rest of the backbone is frozen."""

from dataclasses import dataclass

from torch import nn

from vptlab.methods import Method, MethodConfig, option, register
from vptlab.methods.base import FT_GRID, at_least, freeze, unfreeze_head


@dataclass(frozen=True)
class TopBlocksConfig(MethodConfig):
    tuned_blocks: int = option(1, help="how many of the last blocks train", check=at_least(1))


def prepare(model: nn.Module, options: TopBlocksConfig) -> None:
    freeze(model)
    for block in model.blocks[-options.tuned_blocks :]:
        block.requires_grad_(True)
    unfreeze_head(model)


METHOD = register(
    Method(
        name="top-blocks",
        summary="the last k blocks and the head train",
        trainable="last k blocks + head",
        prepare=prepare,
        config=TopBlocksConfig,
        optimizer="adamw",
        grid=FT_GRID,
        default_lr=0.0005,
        cost="full",
        backbone_eval=False,
    )
)
'''
TINY = ["--backbone-arg", "depth=2", "--backbone-arg", "embed_dim=16", "--backbone-arg", "num_heads=2",
        "--no-pretrained", "--image-size", "16", "--epochs", "1", "--no-progress"]  # fmt: skip


def _install(site: Path, dist: str, module: str, code: str, entry: str) -> None:
    (site / f"{module}.py").write_text(code)
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[vptlab.methods]\n{entry}\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    _install(site, "vptlab_top_blocks", "vptlab_top_blocks", PLUGIN, "top-blocks = vptlab_top_blocks:METHOD")
    broken = "raise ImportError('needs the frobnicate package')\n"
    _install(site, "vptlab_broken", "vptlab_broken", broken, "broken = vptlab_broken:METHOD")
    return site


def _vptlab(site: Path, *args: str, cwd: Path | None = None, code: str | None = None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(site)]), VPTLAB_NO_PROGRESS="1")
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "vptlab", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_a_plugin_method_is_listed_and_a_broken_one_is_named_in_one_line(site):
    out = _vptlab(site, "methods")
    assert out.returncode == 0, out.stderr
    assert (
        "\ntop-blocks\n" in out.stdout and "--tuned-blocks 1: how many of the last blocks train" in out.stdout
    )
    assert "\nvpt-deep\n" in out.stdout  # the built-ins are still there
    warning = [line for line in out.stdout.splitlines() if "broken" in line]
    assert warning == [
        "warning: method plugin 'broken' (vptlab_broken:METHOD) failed to load: "
        "ImportError: needs the frobnicate package"
    ]
    out = _vptlab(site, "train", "--method", "broken", "--task", "shapes", "--out", str(site / "x"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"vptlab: error: {warning[0].removeprefix('warning: ')}"]


def test_a_plugin_method_trains_one_epoch_with_its_option(site, tmp_path):
    out = _vptlab(site, "train", "--method", "top-blocks", "--task", "shapes", "--tuned-blocks", "1", *TINY,
                  "--out", str(tmp_path / "run"))  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "ok" and result["config"]["tuned_blocks"] == 1
    d, classes = 16, result["task"]["num_classes"]
    block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    assert result["params"]["trainable"] == block + d * classes + classes


def test_a_study_spec_validates_a_plugin_methods_options(site):
    code = textwrap.dedent(
        """
        from vptlab.errors import UserError
        from vptlab.study.plan import Group, tune_configs
        from vptlab.study.spec import parse_spec

        head = "[data]\\nsource = 'synthetic'\\ntasks = ['shapes']\\n[methods.top-blocks]\\n"
        spec = parse_spec(head + "tuned_blocks = [1, 2]\\nlr = 0.001\\nwd = 0.0\\n")
        print(sorted(c.option("tuned_blocks") for c in tune_configs(spec, Group("top-blocks", "shapes", "standard"))))
        try:
            parse_spec(head + "tuned_blocks = 0\\n", "s.toml")
        except UserError as err:
            print(err)
        """
    )
    out = _vptlab(site, code=code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "[1, 2]",
        "s.toml: methods.top-blocks.tuned_blocks: must be >= 1, got 0",
    ]
