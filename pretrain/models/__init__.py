"""The one registry of backbone architectures, shared by every stage (DESIGN.md).

``build_backbone(name)`` returns an encoder whose ``forward`` gives pooled features
``(B, feature_dim)`` and whose ``state_dict`` uses torchvision key names (ResNets, without the
classifier ``fc``) or timm key names (ViTs). Converters and downstream may import this module
and nothing else of ``pretrain``; it holds no training code. Modelled on timm's
``_registry.py``: a name -> builder table and one ``create``-style entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from resa_core.errors import UserError


@dataclass(frozen=True)
class ArchSpec:
    """What the other stages need to know about an arch without building it."""

    name: str
    family: str  # "resnet" or "vit"
    feature_dim: int
    builder: Callable[[], nn.Module]
    standard_stem: bool = True  # False: 3x3 CIFAR stem that Detectron2/mmseg ResNets cannot take


_REGISTRY: dict[str, ArchSpec] = {}


def register_arch(name: str, family: str, feature_dim: int, standard_stem: bool = True):
    def decorator(builder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"arch '{name}' registered twice")
        _REGISTRY[name] = ArchSpec(name, family, feature_dim, builder, standard_stem)
        return builder

    return decorator


def list_archs() -> list[str]:
    return sorted(_REGISTRY)


def arch_spec(name: str) -> ArchSpec:
    if name not in _REGISTRY:
        raise UserError(f"unknown arch '{name}'; registered archs: {', '.join(list_archs())}")
    return _REGISTRY[name]


def build_backbone(name: str) -> nn.Module:
    """A randomly initialised encoder of the registered arch ``name``."""
    model = arch_spec(name).builder()
    model.arch_name = name
    model.feature_dim = arch_spec(name).feature_dim
    return model


from pretrain.models import resnet as _resnet  # noqa: E402,F401  (registers the ResNets)
from pretrain.models import vit as _vit  # noqa: E402,F401  (registers the ViTs)
