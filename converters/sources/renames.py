"""Key renames shared by several source layouts."""

from __future__ import annotations

# nn.Sequential(*list(torchvision_resnet.children())[:-1]) numbers the children: conv1, bn1, relu,
# maxpool, layer1..layer4, avgpool. relu/maxpool/avgpool hold no tensors.
_RESNET_CHILDREN = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


def from_resnet_children(key: str) -> str:
    """``4.0.conv1.weight`` -> ``layer1.0.conv1.weight``; an unknown index is kept (and reported unmapped)."""
    head, dot, rest = key.partition(".")
    return f"{_RESNET_CHILDREN.get(head, head)}{dot}{rest}"
