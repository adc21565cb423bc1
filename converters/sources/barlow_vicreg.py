"""Barlow Twins and VICReg checkpoints (torch.hub-style plain ResNets).

facebookresearch/barlowtwins ``main.py`` and facebookresearch/vicreg ``main_vicreg.py`` save a
training checkpoint ``{"epoch", "model", "optimizer"}`` of the DDP model (``module.backbone.``,
``module.projector.``; Barlow Twins adds the non-affine ``module.bn``) and, at the end,
``model.module.backbone.state_dict()`` as ``resnet50.pth``: the plain torchvision-named file
their ``hubconf.py`` loads. Auto-detection sees the training checkpoints; a plain
``resnet50.pth`` is detected as torchvision (the same layout) or read with ``--from``.
"""

from __future__ import annotations

from converters.sources.layout import Layout, Part, has_prefix, register_layout

_PARTS = {None: Part((("model",), ()), ("module.backbone.", ""))}


def _training(obj) -> bool:
    return has_prefix(obj, ("model",), "module.backbone.")


register_layout(Layout(
    name="barlowtwins",
    description="Barlow Twins: training checkpoint (model/module.backbone., module.bn) or hub resnet50.pth",
    encoders=_PARTS,
    default=(None,),
    detect=lambda obj: _training(obj) and has_prefix(obj, ("model",), "module.bn."),
    method="barlowtwins",
))

register_layout(Layout(
    name="vicreg",
    description="VICReg: training checkpoint (model/module.backbone.) or hub resnet50.pth",
    encoders=_PARTS,
    default=(None,),
    detect=lambda obj: _training(obj) and not has_prefix(obj, ("model",), "module.bn."),
    method="vicreg",
))
