"""The ReSA authors' released checkpoints (winci-ai/resa).

Full checkpoints hold the DDP-wrapped model: ``module.encoder.*``, ``module.momentum_encoder.*``
plus projectors and predictor, optionally under ``state_dict`` (``src/utils.py``
``load_pretrained_encoder`` accepts both and takes ``module.momentum_encoder``, the encoder the
authors evaluate). Encoder-only releases (``resa_resnet50_only_*.pth``) are the encoder's own
state_dict, bare or under ``state_dict``; a bare one reads as torchvision/timm, a wrapped one here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from converters.sources.layout import Layout, Part, dig, has_prefix, register_layout

_WRAPPED = (("state_dict",), ())
_BACKBONE_KEYS = ("conv1.weight", "patch_embed.proj.weight")


def _detect(obj: Any) -> bool:
    full = any(has_prefix(obj, path, "module.encoder.") for path in _WRAPPED)
    weights = dig(obj, ("state_dict",))
    encoder_only = (
        weights is not None and not ({"meta", "author"} & set(obj)) and any(key in weights for key in _BACKBONE_KEYS)
    )
    return isinstance(obj, Mapping) and (full or encoder_only)


register_layout(Layout(
    name="resa_release",
    description="ReSA authors' release: full (module.encoder. / module.momentum_encoder.) or encoder-only",
    encoders={
        "momentum": Part(_WRAPPED, ("module.momentum_encoder.",)),
        "online": Part(_WRAPPED, ("module.encoder.",)),
        None: Part((("state_dict",),), ("",)),
    },
    default=("momentum", "online", None),
    detect=_detect,
    method="resa",
))
