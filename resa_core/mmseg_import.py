"""The one way this project imports MMSegmentation: lite ``mmcv.ops`` first, then mmseg's registries.

Shared by the segmentation transfer stage and the converters' ``--verify`` (both may import resa_core).
"""

from __future__ import annotations

import importlib

from resa_core.mmcv_lite_ops import register_lite_ops

INSTALL_HINT = "bash scripts/install_segmentation.sh (or pip install -e '.[segmentation]')"


def import_mmseg():
    """Import ``mmseg`` with all its modules registered (default scope ``mmseg``); returns the module."""
    try:
        importlib.import_module("mmcv")
        importlib.import_module("mmengine")
    except ImportError as err:
        from resa_core.errors import UserError

        raise UserError(f"MMSegmentation is not installed ({err}); install it with: {INSTALL_HINT}") from None
    register_lite_ops()
    mmseg = importlib.import_module("mmseg")
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    return mmseg
