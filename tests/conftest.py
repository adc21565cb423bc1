"""Shared test helpers.

``require(module)``: the real engines (Detectron2, MMSegmentation, a local SLURM cluster) are
installed by the README's test command, so in CI (``CI`` set) a missing one is a failure,
never a skip; on a developer's machine without them the test is skipped with the reason.
"""

import importlib
import os

import pytest


def require(module: str, how_to_install: str):
    """Import ``module`` or skip (outside CI) / fail (in CI) naming how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        message = f"{module} is not importable ({err}); install it with: {how_to_install}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
