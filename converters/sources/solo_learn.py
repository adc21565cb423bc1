"""solo-learn checkpoints (vturrisi/solo-learn).

PyTorch Lightning checkpoints ``{"state_dict", "epoch", "global_step", ...}`` of a method module:
``solo/methods/base.py`` ``BaseMethod`` holds ``backbone`` (torchvision / timm names; CIFAR
ResNets with a 3x3 ``conv1``), ``projector`` and ``classifier``; ``BaseMomentumMethod`` adds
``momentum_backbone`` and ``momentum_projector``. ``main_linear.py`` strips ``backbone.``.
On CIFAR-10/100 ``BaseMethod.__init__`` replaces ``conv1`` by a 3x3 stride-1 conv with
``padding=2`` and drops the max-pool: a 3x3-stem ResNet-18 read here is ``resnet18_cifar_pad2``.
lightly's benchmark modules also hold ``backbone.`` but are lightly's (``BENCHMARK_PREFIXES``).
"""

from __future__ import annotations

from collections.abc import Mapping

from converters.sources.layout import Layout, Part, dig, has_prefix, register_layout
from converters.sources.lightly import BENCHMARK_PREFIXES


def _detect(obj) -> bool:
    return (
        isinstance(obj, Mapping)
        and not ({"meta", "author"} & set(obj))
        and has_prefix(obj, ("state_dict",), "backbone.")
        and "backbone.0.weight" not in (dig(obj, ("state_dict",)) or {})
        and not any(has_prefix(obj, ("state_dict",), prefix) for prefix in BENCHMARK_PREFIXES)
    )


register_layout(Layout(
    name="solo_learn",
    description="solo-learn Lightning checkpoint (state_dict/backbone., momentum_backbone.)",
    encoders={
        "momentum": Part((("state_dict",),), ("momentum_backbone.",)),
        "online": Part((("state_dict",),), ("backbone.",)),
    },
    default=("momentum", "online"),
    detect=_detect,
    arch_variants={"resnet18_cifar": "resnet18_cifar_pad2"},
))
