"""SwAV and DeepCluster-v2 checkpoints (facebookresearch/swav).

``main_swav.py`` / ``main_deepclusterv2.py`` save ``{"epoch", "state_dict", "optimizer", "amp"}``
of the DDP model (``module.`` + ``src/resnet50.py``'s torchvision names, plus
``projection_head`` and ``prototypes``); released files are that ``state_dict`` alone.
``eval_linear.py`` reads ``state_dict`` when present and strips ``module.``.
"""

from __future__ import annotations

from converters.sources.layout import Layout, Part, dig, register_layout

_WRAPPED = (("state_dict",), ())


def _detect(obj) -> bool:
    return any("module.conv1.weight" in (dig(obj, path) or {}) for path in _WRAPPED)


register_layout(Layout(
    name="swav",
    description="SwAV / DeepCluster-v2 (module.-prefixed ResNet, projection_head, prototypes)",
    encoders={None: Part(_WRAPPED, ("module.",))},
    default=(None,),
    detect=_detect,
))
