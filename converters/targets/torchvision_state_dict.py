"""Write a bare torchvision state_dict ``.pth`` plus the sidecar ``<out>.json`` with its provenance.

``build_backbone(arch).load_state_dict(torch.load(out, weights_only=True))`` works as is (the
registry's ResNets are torchvision's, so ``--verify``'s read-back check is the torchvision model);
the sidecar tells readers the arch, method and epochs that a bare state_dict cannot hold.
torchvision has no ViT-S/16, so ViTs go to the timm target instead.
"""

from __future__ import annotations

from pathlib import Path

from converters.backbone import Backbone
from converters.provenance import provenance_of, sidecar_path
from converters.targets import Target, register_target
from resa_core.atomic import torch_save_atomic, write_json_atomic


def write_torchvision(backbone: Backbone, out: Path) -> None:
    torch_save_atomic(out, dict(backbone.state_dict))
    write_json_atomic(sidecar_path(out), provenance_of(backbone))


register_target(
    Target("torchvision", (".pth", ".pt"), reader="torchvision", write=write_torchvision, has_sidecar=True)
)
