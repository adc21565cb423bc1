"""Registry of readable formats (timm-style name -> entry), and auto-detection over it.

Adding a format is one module that calls :func:`register_source`; ``--from auto`` then tries
its ``detect`` along with the others. Detection must be unambiguous: a file recognised by two
formats is an error asking for ``--from``.
"""

from __future__ import annotations

from typing import Any

from converters.sources.base import Source, SourceWeights
from resa_core.errors import UserError

__all__ = ["Source", "SourceWeights", "detect_source", "get_source", "list_sources", "register_source"]

_REGISTRY: dict[str, Source] = {}


def register_source(source: Source) -> Source:
    if source.name in _REGISTRY or source.name == "auto":
        raise ValueError(f"source format '{source.name}' registered twice or reserved")
    _REGISTRY[source.name] = source
    return source


def list_sources() -> list[str]:
    return list(_REGISTRY)


def get_source(name: str) -> Source:
    if name not in _REGISTRY:
        raise UserError(f"unknown source format '{name}'; known: auto, {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def detect_source(obj: Any, where: str) -> Source:
    """The one registered format whose ``detect`` accepts ``obj``."""
    matches = [source for source in _REGISTRY.values() if source.detect(obj)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(source.name for source in matches)
        raise UserError(f"{where}: looks like several formats ({names}); pick one with --from")
    seen = ", ".join(sorted(map(str, obj))[:8]) if isinstance(obj, dict) else type(obj).__name__
    raise UserError(
        f"{where}: not a recognised checkpoint format (top level: {seen}); "
        f"known formats: {', '.join(_REGISTRY)}"
    )


from converters.sources import (  # noqa: E402,F401  (each module registers its format)
    barlow_vicreg,
    byol_port,
    detectron2_pkl,
    dino,
    lightly,
    mmseg_checkpoint,
    mmselfsup,
    moco,
    resa_checkpoint,
    resa_release,
    solo_learn,
    swav,
    timm_state_dict,
    torchvision_state_dict,
    vissl,
)
