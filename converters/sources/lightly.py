"""lightly checkpoints (lightly-ai/lightly).

The Lightning examples (``examples/pytorch_lightning/byol.py``, ``moco.py``, ``simclr.py``) build
``backbone = nn.Sequential(*list(torchvision_resnet.children())[:-1])`` and, for momentum methods,
``backbone_momentum = copy.deepcopy(backbone)``, next to ``projection_head`` /
``prediction_head``; the Lightning checkpoint keeps them under ``state_dict`` (keys
``backbone.0.weight``, ``backbone.4.0.conv1.weight``, ``backbone_momentum...``).
"""

from __future__ import annotations

from converters.sources.layout import Layout, Part, dig, register_layout
from converters.sources.renames import from_resnet_children

register_layout(Layout(
    name="lightly",
    description="lightly Lightning checkpoint (state_dict/backbone.N. Sequential ResNet, backbone_momentum.)",
    encoders={
        "momentum": Part((("state_dict",),), ("backbone_momentum.",)),
        "online": Part((("state_dict",),), ("backbone.",)),
    },
    default=("momentum", "online"),
    detect=lambda obj: "backbone.0.weight" in (dig(obj, ("state_dict",)) or {}),
    rename=from_resnet_children,
))
