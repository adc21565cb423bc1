"""Registry of writable formats (name -> :class:`Target`).

Each target names the source format that reads its files back (``reader``), which is what
``--verify`` uses and what lets downstream evaluate any converted file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from converters.backbone import Backbone
from converters.engines import EngineResult
from converters.provenance import sidecar_path
from resa_core.errors import UserError


@dataclass(frozen=True)
class Target:
    """A writable format: ``write(backbone, out)`` writes ``out`` (and its sidecar) atomically.

    ``families`` are the arch families (``pretrain.models`` ``ArchSpec.family``) the format can hold;
    ``engine_check(backbone, out)`` loads ``out`` into the framework's own model for ``--verify``.
    """

    name: str
    extensions: tuple[str, ...]  # first one is used for names derived in batch mode
    reader: str  # registered source format that reads these files back
    write: Callable[[Backbone, Path], None]
    needs_standard_stem: bool = False  # Detectron2/MMSeg ResNets have torchvision's 7x7 stem
    has_sidecar: bool = False
    families: tuple[str, ...] = ("resnet",)
    engine_check: Callable[[Backbone, Path], list[EngineResult]] | None = None

    def files(self, out: Path) -> list[Path]:
        """Every path :attr:`write` creates for ``out``."""
        return [out, sidecar_path(out)] if self.has_sidecar else [out]


_REGISTRY: dict[str, Target] = {}


def register_target(target: Target) -> Target:
    if target.name in _REGISTRY:
        raise ValueError(f"target format '{target.name}' registered twice")
    _REGISTRY[target.name] = target
    return target


def list_targets() -> list[str]:
    return list(_REGISTRY)


def get_target(name: str) -> Target:
    if name not in _REGISTRY:
        raise UserError(f"unknown target format '{name}'; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


from converters.targets import (  # noqa: E402,F401  (each module registers its format)
    detectron2_pkl,
    mmseg_checkpoint,
    timm_state_dict,
    torchvision_state_dict,
)
