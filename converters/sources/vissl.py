"""VISSL checkpoints (facebookresearch/vissl).

``extra_scripts/convert_vissl_to_torchvision.py`` takes the trunk from
``classy_state_dict/base_model/model/trunk`` (training checkpoints) or ``model_state_dict``, and
strips ``_feature_blocks.`` to get torchvision names. Heads live beside the trunk and are not read.
"""

from __future__ import annotations

from converters.sources.layout import Layout, Part, has_prefix, register_layout

_TRUNKS = (("classy_state_dict", "base_model", "model", "trunk"), ("model_state_dict",))

register_layout(Layout(
    name="vissl",
    description="VISSL checkpoint (classy_state_dict/.../trunk or model_state_dict, _feature_blocks.)",
    encoders={None: Part(_TRUNKS, ("_feature_blocks.",))},
    default=(None,),
    detect=lambda obj: any(has_prefix(obj, path, "_feature_blocks.") for path in _TRUNKS),
))
