"""torchvision ResNet key names <-> Detectron2 ResNet key names.

The forward direction is exactly facebookresearch/moco ``detection/convert-pretrain-to-detectron2.py``
(the string replacements in the same order), the mapping used to transfer MoCo, ReSA and most
SSL ResNets to Detectron2: keys outside ``layerN`` go under ``stem.``; ``layerN`` -> ``res{N+1}``;
``bnK`` -> ``convK.norm``; ``downsample.0`` -> ``shortcut``; ``downsample.1`` -> ``shortcut.norm``.
The inverse undoes it, so a ``.pkl`` written by that script (or by us) reads back to canonical.
"""

from __future__ import annotations

import re


def to_detectron2(key: str) -> str:
    """``layer1.0.bn1.weight`` -> ``res2.0.conv1.norm.weight`` (MoCo's replacements, in MoCo's order)."""
    if "layer" not in key:
        key = "stem." + key
    for t in (1, 2, 3, 4):
        key = key.replace(f"layer{t}", f"res{t + 1}")
    for t in (1, 2, 3):
        key = key.replace(f"bn{t}", f"conv{t}.norm")
    key = key.replace("downsample.0", "shortcut")
    key = key.replace("downsample.1", "shortcut.norm")
    return key


_INVERSE_RULES = (
    (re.compile(r"^stem\."), ""),
    (re.compile(r"^res([2-5])\."), lambda m: f"layer{int(m.group(1)) - 1}."),
    (re.compile(r"\bshortcut\.norm\."), "downsample.1."),
    (re.compile(r"\bshortcut\."), "downsample.0."),
    (re.compile(r"\bconv([1-3])\.norm\."), r"bn\1."),
)


def from_detectron2(key: str) -> str:
    """``res2.0.conv1.norm.weight`` -> ``layer1.0.bn1.weight``; the inverse of :func:`to_detectron2`."""
    for pattern, replacement in _INVERSE_RULES:
        key = pattern.sub(replacement, key)
    return key
