"""A minimal ``mmcv.ops`` for mmcv-lite, registered before mmseg is imported.

``import mmseg.models`` imports ``mmcv.ops`` at module level (``point_sample`` in
``models/utils/point_sample.py``, ``utils/mask_classification.py``, ``decode_heads/san_head.py``;
``sigmoid_focal_loss`` in ``models/losses/focal_loss.py``). mmcv-lite ships ``mmcv/ops/*.py`` but
no compiled ``mmcv._ext``, so its ``mmcv/ops/__init__.py`` fails. FCN, UPerNet and DeepLabV3 use
no compiled op, so this module registers a stand-in ``mmcv.ops`` that:

- serves ``point_sample`` from mmcv's own pure-PyTorch ``mmcv/ops/point_sample.py`` (loaded as a
  submodule of the stand-in, so its code is mmcv's, not a copy);
- raises a clear error, naming the full-mmcv install route, for any compiled-only op — at
  import (``from mmcv.ops import RoIAlign``: ModuleNotFoundError, which mmseg's optional imports
  expect)
  or at call (``sigmoid_focal_loss``, which mmseg's FocalLoss only calls for CUDA tensors).

With full mmcv installed (``mmcv._ext`` importable) nothing is registered.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

from resa_core.errors import UserError

FULL_MMCV_HINT = "install full mmcv==2.1.0 with compiled ops (docs/segmentation.md, 'GPU install')"


def has_compiled_ops() -> bool:
    """True when the installed mmcv carries its compiled extension (full mmcv, not mmcv-lite)."""
    try:
        return importlib.util.find_spec("mmcv._ext") is not None
    except ImportError:
        return False


def _compiled_only(name: str):
    def unavailable(*args, **kwargs):
        raise UserError(f"mmcv.ops.{name} needs mmcv's compiled ops, which mmcv-lite lacks; {FULL_MMCV_HINT}")

    unavailable.__name__ = name
    return unavailable


class _LiteOps(types.ModuleType):
    """``mmcv.ops`` with the pure-PyTorch ops only.

    Any other name raises ModuleNotFoundError (an ImportError): mmseg's optional imports
    (``cc_head.py``, ``psa_head.py``) catch exactly ``ModuleNotFoundError``, not AttributeError.
    """

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        message = f"mmcv.ops.{name} needs mmcv's compiled ops, which mmcv-lite lacks; {FULL_MMCV_HINT}"
        raise ModuleNotFoundError(message, name=f"mmcv.ops.{name}")


def register_lite_ops() -> bool:
    """Register the stand-in ``mmcv.ops`` unless full mmcv is installed; True when it registered one."""
    existing = sys.modules.get("mmcv.ops")
    if isinstance(existing, _LiteOps) or has_compiled_ops():
        return False
    mmcv = importlib.import_module("mmcv")
    ops_dir = Path(mmcv.__file__).parent / "ops"
    ops = _LiteOps("mmcv.ops", __doc__)
    ops.__path__ = [str(ops_dir)]  # submodules resolve to mmcv's own files
    ops.__package__ = "mmcv.ops"
    sys.modules["mmcv.ops"] = ops
    mmcv.ops = ops
    ops.point_sample = importlib.import_module("mmcv.ops.point_sample").point_sample
    ops.sigmoid_focal_loss = _compiled_only("sigmoid_focal_loss")
    return True
