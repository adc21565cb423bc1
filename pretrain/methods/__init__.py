"""Registry of self-supervised methods: one small file per method, looked up by name.

A method is an ``nn.Module`` built from ``(config, encoder)`` whose ``forward(weak, standard)``
returns ``(loss, logs)`` and whose ``after_step(progress)`` does per-step bookkeeping such as
the momentum update. Modelled on solo-learn's ``solo/methods`` (one method per file, losses
apart from methods).
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


def build_method(name: str, config: dict, encoder: nn.Module) -> nn.Module:
    if name not in _METHODS:
        raise UserError(f"unknown method '{name}'; registered methods: {', '.join(list_methods())}")
    return _METHODS[name](config, encoder)


from pretrain.methods import infonce as _infonce  # noqa: E402,F401
from pretrain.methods import resa as _resa  # noqa: E402,F401
