"""The provenance every written file carries, and its validation when read back.

The same small dict travels in each target's own place for metadata: Detectron2 ``.pkl`` under
``provenance``, MMSegmentation ``.pth`` as ``meta``, torchvision ``.pth`` as a sidecar
``<file>.json``. Read back, it is untrusted like the rest of the file, so its values are
type-checked here and a bad one is a UserError naming the file and key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from converters.backbone import ENCODER_CHOICES, Backbone
from pretrain.models import list_archs
from resa_core.errors import UserError


def provenance_of(backbone: Backbone) -> dict[str, Any]:
    """Plain (JSON- and weights_only-safe) description of where ``backbone`` came from."""
    return {
        "arch": backbone.arch,
        "method": backbone.method,
        "pretrain_epochs": backbone.pretrain_epochs,
        "encoder": backbone.encoder,
        "source_format": backbone.source_format,
        "source_path": backbone.source_path,
        "source_sha256": backbone.source_sha256,
    }


def sidecar_path(path: str | Path) -> Path:
    """``model.pth`` -> ``model.pth.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar JSON of ``path`` as a dict, or {} when there is none."""
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{sidecar}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{sidecar}: expected a JSON object, got {type(data).__name__}")
    return data


def provenance_fields(meta: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validated ``arch``/``method``/``pretrain_epochs``/``encoder`` from ``meta`` (absent -> None)."""
    fields = {name: meta.get(name) for name in ("arch", "method", "pretrain_epochs", "encoder")}
    arch = fields["arch"]
    if arch is not None and arch not in list_archs():
        raise UserError(f"{where}: arch {arch!r} is not registered (registered: {', '.join(list_archs())})")
    if fields["method"] is not None and not isinstance(fields["method"], str):
        raise UserError(f"{where}: 'method' must be a string, got {fields['method']!r}")
    epochs = fields["pretrain_epochs"]
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)):
        raise UserError(f"{where}: 'pretrain_epochs' must be an integer, got {epochs!r}")
    if fields["encoder"] not in (*ENCODER_CHOICES, None):
        choices = ", ".join(ENCODER_CHOICES)
        raise UserError(f"{where}: 'encoder' must be one of {choices} or null, got {fields['encoder']!r}")
    return fields
