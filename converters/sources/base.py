"""What a source reader returns, and the renaming helper every reader uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy
import torch

from resa_core.errors import UserError


@dataclass(frozen=True)
class SourceWeights:
    """The encoder tensors found in a file, already renamed to canonical keys, plus what the file says.

    ``origin`` maps each canonical key back to its name in the file, for coverage reports.
    ``arch`` None means the file does not name one and it is inferred from the shapes.
    ``not_taken`` describes the file's other tensors, left out because they are not this encoder
    (the other encoder, heads, queues), e.g. ``"module.encoder_k.* (320 tensors)"``.
    """

    tensors: dict[str, torch.Tensor]
    origin: dict[str, str]
    arch: str | None = None
    encoder: str | None = None
    method: str | None = None
    pretrain_epochs: int | None = None
    not_taken: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """A readable file format: ``detect`` recognises a loaded object, ``read`` extracts its encoder.

    ``read(path, obj, encoder)`` gets the file's path (for sidecars and messages), the object the
    safe loader returned, and the encoder asked for (None: the format's default).
    ``arch_variants`` maps an arch inferred from shapes to the arch this format builds with those
    shapes (MoCo v3: ``vit_small_patch16`` -> its 12-head ``vit_small_patch16_12h``).
    """

    name: str
    description: str
    detect: Callable[[Any], bool]
    read: Callable[[Path, Any, str | None], SourceWeights]
    arch_variants: Mapping[str, str] = field(default_factory=dict)


def as_tensor(value: Any, where: str) -> torch.Tensor:
    """A tensor from a tensor or numpy array (Detectron2 stores numpy); anything else is an error."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, numpy.ndarray):
        try:
            return torch.from_numpy(numpy.array(value, copy=True))
        except TypeError:  # object or string arrays
            raise UserError(f"{where}: numpy array of dtype {value.dtype} is not a numeric tensor") from None
    raise UserError(f"{where}: expected a tensor or numpy array, got {type(value).__name__}")


def renamed_tensors(
    weights: Mapping[str, Any], where: str, rename: Callable[[str], str] = str
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(canonical -> tensor, canonical -> file key)``; two file keys landing on one name is an error."""
    if not isinstance(weights, Mapping):
        raise UserError(f"{where}: expected a dict of tensors, got {type(weights).__name__}")
    tensors: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for key, value in weights.items():
        if not isinstance(key, str):
            raise UserError(f"{where}: tensor names must be strings, got {key!r}")
        canonical = rename(key)
        if canonical in origin:
            raise UserError(f"{where}: keys '{origin[canonical]}' and '{key}' both map to '{canonical}'")
        tensors[canonical] = as_tensor(value, f"{where}: '{key}'")
        origin[canonical] = key
    return tensors, origin
