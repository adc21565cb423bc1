"""This project's pretraining checkpoint (contracts.md section 1), read as documented data.

Holds ``encoder`` (online) and, for methods with an EMA teacher, ``momentum_encoder``. Transfer
takes the momentum encoder when there is one, as the ReSA authors evaluate, unless told
``encoder="online"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from converters.backbone import ENCODER_ROLE
from converters.provenance import provenance_fields
from converters.sources import register_source
from converters.sources.base import Source, SourceWeights, renamed_tensors
from resa_core.errors import UserError

FORMAT_VERSION = 1
_ENCODER_KEYS = {"momentum": "momentum_encoder", "online": "encoder"}


def _detect(obj: Any) -> bool:
    return isinstance(obj, dict) and {"format_version", "arch", "encoder"} <= obj.keys()


def _read(path: Path, obj: Any, encoder: str | None) -> SourceWeights:
    if not _detect(obj):
        raise UserError(f"{path}: not a resa checkpoint (needs format_version, arch, encoder)")
    if obj["format_version"] != FORMAT_VERSION:
        raise UserError(
            f"{path}: checkpoint format_version {obj['format_version']!r}, this reader knows {FORMAT_VERSION}"
        )
    if encoder is None:
        encoder = "momentum" if "momentum_encoder" in obj else "online"
    encoder = ENCODER_ROLE[encoder]
    key = _ENCODER_KEYS[encoder]
    if key not in obj:
        raise UserError(
            f"{path}: no '{key}' in this checkpoint (method {obj.get('method')!r} has no momentum encoder); "
            "use encoder 'online'"
        )
    fields = provenance_fields(
        {"arch": obj["arch"], "method": obj.get("method"), "pretrain_epochs": obj.get("epoch")}, str(path)
    )
    tensors, origin = renamed_tensors(obj[key], f"{path}: '{key}'")
    origin = {canonical: f"{key}.{name}" for canonical, name in origin.items()}
    others = [name for name in _ENCODER_KEYS.values() if name != key and name in obj]
    return SourceWeights(
        tensors, origin, arch=fields["arch"], encoder=encoder,
        method=fields["method"], pretrain_epochs=fields["pretrain_epochs"],
        not_taken=tuple(f"{name}.* ({len(obj[name])} tensors)" for name in others),
    )


register_source(Source("resa", "resa-bench pretraining checkpoint (contracts.md section 1)", _detect, _read))
