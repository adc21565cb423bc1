"""A bare torchvision ResNet state_dict (``torch.save(model.state_dict())``), optionally with ``fc``.

What ``torchvision.models.resnet50(weights=...)`` and many SSL repos publish, and what our
torchvision target writes. The arch comes from a sidecar ``<file>.json`` when present (our
target writes one, with the rest of the provenance), else it is inferred from key shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from converters.provenance import provenance_fields, read_sidecar, sidecar_path
from converters.sources import register_source
from converters.sources.base import Source, SourceWeights, renamed_tensors


def _detect(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and "conv1.weight" in obj
        and all(isinstance(value, torch.Tensor) for value in obj.values())
    )


def read_bare_state_dict(path: Path, obj: Any, encoder: str | None) -> SourceWeights:
    """A flat name -> tensor dict with canonical names; provenance from the sidecar, if any."""
    fields = provenance_fields(read_sidecar(path), str(sidecar_path(path)))
    tensors, origin = renamed_tensors(obj, str(path))
    return SourceWeights(tensors, origin, **fields)


register_source(
    Source("torchvision", "torchvision ResNet state_dict (+ optional <file>.json sidecar)",
           _detect, read_bare_state_dict)
)
