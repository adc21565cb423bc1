"""An MMSegmentation/MMCV backbone checkpoint: ``{"state_dict": ..., "meta": ...}``.

The layout mmengine's ``load_checkpoint`` takes (open-mmlab/mmengine
``mmengine/runner/checkpoint.py``: it uses ``checkpoint["state_dict"]``), with the torchvision
key names that MMSegmentation's ``ResNet`` backbone shares, or ``VisionTransformer`` names
(mapped back to timm's by :mod:`converters.mmseg_keys`). ``meta`` carries our provenance when we
wrote the file. A ``backbone.``-prefixed state_dict is an MMSelfSup checkpoint, not this.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from converters.mmseg_keys import from_mmseg_vit
from converters.provenance import provenance_fields
from converters.sources import register_source
from converters.sources.base import Source, SourceWeights, renamed_tensors
from resa_core.errors import UserError


def _detect(obj: Any) -> bool:
    if not (isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping) and "meta" in obj):
        return False
    return not any(isinstance(key, str) and key.startswith("backbone.") for key in obj["state_dict"])


def _read(path: Path, obj: Any, encoder: str | None) -> SourceWeights:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("state_dict"), Mapping):
        raise UserError(f"{path}: not an MMSegmentation checkpoint (needs a 'state_dict' dict)")
    meta = obj.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise UserError(f"{path}: 'meta' must be a dict, got {type(meta).__name__}")
    fields = provenance_fields(meta, f"{path}: meta")
    tensors, origin = renamed_tensors(obj["state_dict"], f"{path}: 'state_dict'", rename=from_mmseg_vit)
    return SourceWeights(tensors, origin, **fields)


register_source(Source("mmseg", "MMSegmentation checkpoint {'state_dict', 'meta'}", _detect, _read))
