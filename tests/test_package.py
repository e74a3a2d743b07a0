"""The package's top-level Python API: every name resolves, lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import vptlab


@pytest.mark.parametrize("name", [n for n in vptlab.__all__ if n != "__version__"])
def test_every_exported_name_resolves_to_the_real_object(name):
    module = __import__(vptlab._EXPORTS[name], fromlist=[name])
    assert getattr(vptlab, name) is getattr(module, name)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="'vptlab' has no attribute 'nope'"):
        vptlab.nope  # noqa: B018


def test_importing_vptlab_does_not_import_torch():
    code = "import sys, vptlab; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    )
