"""BYOL PyTorch ports.

sthalles/PyTorch-BYOL ``trainer.py`` ``save_model`` writes ``{"online_network_state_dict",
"target_network_state_dict", "predictor_network_state_dict", "optimizer_state_dict"}``; its
``models/resnet_base_network.py`` keeps the torchvision ResNet as
``encoder = nn.Sequential(*children()[:-1])`` (keys ``encoder.0.weight``, ``encoder.4.0...``)
next to the projection ``projetion``. The target network is the momentum encoder. Ports that
save ``resnet.state_dict()`` (lucidrains/byol-pytorch's README) are plain torchvision files.
"""

from __future__ import annotations

from collections.abc import Mapping

from converters.sources.layout import Layout, Part, register_layout
from converters.sources.renames import from_resnet_children

register_layout(Layout(
    name="byol",
    description="BYOL port (sthalles/PyTorch-BYOL: online/target_network_state_dict, Sequential ResNet)",
    encoders={
        "momentum": Part((("target_network_state_dict",),), ("encoder.",)),
        "online": Part((("online_network_state_dict",),), ("encoder.",)),
    },
    default=("momentum", "online"),
    detect=lambda obj: isinstance(obj, Mapping) and isinstance(obj.get("online_network_state_dict"), Mapping),
    rename=from_resnet_children,
    method="byol",
))
