"""Registry of self-supervised methods: one small file per method, looked up by name.

A method is a :class:`pretrain.methods.base.Method` built from ``(config, encoder)`` whose
``forward(*views)`` returns ``(loss, logs)``; it declares its own ``loss`` config section, its
augmentation pair, optimizer groups and teacher (see ``base.py``). Adding a method is one file
here plus its presets. Modelled on solo-learn's ``solo/methods`` (one method per file, losses
apart from methods, in ``pretrain/losses/``).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from resa_core.errors import UserError

_METHODS: dict[str, Callable[[dict, nn.Module], nn.Module]] = {}


def register_method(name: str):
    def decorator(cls):
        if name in _METHODS:
            raise ValueError(f"method '{name}' registered twice")
        _METHODS[name] = cls
        cls.method_name = name
        return cls

    return decorator


def list_methods() -> list[str]:
    return sorted(_METHODS)


def method_class(name: str):
    if name not in _METHODS:
        raise UserError(f"unknown method '{name}'; registered methods: {', '.join(list_methods())}")
    return _METHODS[name]


def build_method(name: str, config: dict, encoder: nn.Module) -> nn.Module:
    return method_class(name)(config, encoder)


from pretrain.methods import barlow_twins as _barlow_twins  # noqa: E402,F401
from pretrain.methods import byol as _byol  # noqa: E402,F401
from pretrain.methods import cwrgp as _cwrgp  # noqa: E402,F401
from pretrain.methods import deepclusterv2 as _deepclusterv2  # noqa: E402,F401
from pretrain.methods import dino as _dino  # noqa: E402,F401
from pretrain.methods import infonce as _infonce  # noqa: E402,F401
from pretrain.methods import intl as _intl  # noqa: E402,F401
from pretrain.methods import mira as _mira  # noqa: E402,F401
from pretrain.methods import mocov2plus as _mocov2plus  # noqa: E402,F401
from pretrain.methods import mocov3 as _mocov3  # noqa: E402,F401
from pretrain.methods import msn as _msn  # noqa: E402,F401  (msn and pmsn)
from pretrain.methods import resa as _resa  # noqa: E402,F401
from pretrain.methods import simclr as _simclr  # noqa: E402,F401
from pretrain.methods import simsiam as _simsiam  # noqa: E402,F401
from pretrain.methods import swav as _swav  # noqa: E402,F401
from pretrain.methods import vicreg as _vicreg  # noqa: E402,F401
from pretrain.methods import wmse as _wmse  # noqa: E402,F401
