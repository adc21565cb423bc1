"""A Detectron2 ``.pkl`` backbone: ``{"model": {name: ndarray}, "__author__": ..., ...}``.

The format written by facebookresearch/moco ``detection/convert-pretrain-to-detectron2.py``
and by our detectron2 target; names are mapped back to torchvision with
:func:`converters.detectron2_keys.from_detectron2`. Our files add a ``provenance`` dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from converters.detectron2_keys import from_detectron2
from converters.provenance import provenance_fields
from converters.sources import register_source
from converters.sources.base import Source, SourceWeights, renamed_tensors
from resa_core.errors import UserError


def _detect(obj: Any) -> bool:
    model = obj.get("model") if isinstance(obj, Mapping) else None
    return isinstance(model, Mapping) and any(
        isinstance(key, str) and key.startswith(("stem.", "res")) for key in model
    )


def _read(path: Path, obj: Any, encoder: str | None) -> SourceWeights:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("model"), Mapping):
        raise UserError(f"{path}: not a Detectron2 checkpoint (needs a 'model' dict)")
    provenance = obj.get("provenance") or {}
    if not isinstance(provenance, Mapping):
        raise UserError(f"{path}: 'provenance' must be a dict, got {type(provenance).__name__}")
    fields = provenance_fields(provenance, f"{path}: provenance")
    tensors, origin = renamed_tensors(obj["model"], f"{path}: 'model'", rename=from_detectron2)
    return SourceWeights(tensors, origin, **fields)


register_source(
    Source("detectron2", "Detectron2 .pkl (MoCo's convert-pretrain-to-detectron2 layout)", _detect, _read)
)
