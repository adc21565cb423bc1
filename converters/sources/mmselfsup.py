"""MMSelfSup / MMPretrain checkpoints (open-mmlab/mmselfsup).

mmengine checkpoints ``{"meta", "state_dict", ...}`` of an algorithm whose encoder is
``backbone`` (ResNets with torchvision's key names); ``tools/model_converters/
extract_backbone_weights.py`` writes ``{"state_dict": <backbone. stripped>, "author": "MMSelfSup"}``.
Both read here. MMPretrain keeps the same layout.
"""

from __future__ import annotations

from collections.abc import Mapping

from converters.sources.layout import Layout, Part, has_prefix, register_layout


def _detect(obj) -> bool:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("state_dict"), Mapping):
        return False
    return obj.get("author") == "MMSelfSup" or ("meta" in obj and has_prefix(obj, ("state_dict",), "backbone."))


register_layout(Layout(
    name="mmselfsup",
    description="MMSelfSup / MMPretrain checkpoint (state_dict/backbone.) or extracted backbone",
    encoders={None: Part((("state_dict",),), ("backbone.", ""))},
    default=(None,),
    detect=_detect,
))
