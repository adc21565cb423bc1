"""Write a bare timm state_dict, ``.pth`` or ``.safetensors``, plus the sidecar ``<out>.json``.

``timm.create_model(name, num_classes=0).load_state_dict(...)`` takes it as is: timm ViTs use the
canonical ViT names and timm ResNets torchvision's. ``.safetensors`` (what timm's hub entries
hold) also carries the provenance as its string metadata. Both also say how to build the model:
``timm_model`` and ``timm_kwargs`` (:func:`converters.engines.timm_model.timm_settings`, e.g.
``{"num_heads": 12}`` for MoCo v3's ViT-S/16, whose weights look like timm's 6-head one).
"""

from __future__ import annotations

import json
from pathlib import Path

from converters.backbone import Backbone
from converters.engines.timm_model import check_timm, timm_settings
from converters.provenance import provenance_of, sidecar_path
from converters.targets import Target, register_target
from resa_core.atomic import torch_save_atomic, write_bytes_atomic, write_json_atomic


def write_timm(backbone: Backbone, out: Path) -> None:
    provenance = {**provenance_of(backbone), **timm_settings(backbone.arch)}
    if out.suffix.lower() == ".safetensors":
        from safetensors.torch import save

        tensors = {key: tensor.contiguous() for key, tensor in backbone.state_dict.items()}
        metadata = {key: json.dumps(value) for key, value in provenance.items()}
        write_bytes_atomic(out, save(tensors, metadata=metadata))
    else:
        torch_save_atomic(out, dict(backbone.state_dict))
    write_json_atomic(sidecar_path(out), provenance)


register_target(
    Target("timm", (".pth", ".safetensors"), reader="timm", write=write_timm, has_sidecar=True,
           families=("resnet", "vit"), engine_check=check_timm)
)
