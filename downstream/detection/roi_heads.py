"""``Res5ROIHeadsExtraNorm``: the C4 head of the MoCo protocol, an extra norm after res5.

Transcribed from facebookresearch/moco ``detection/train_net.py`` ("As described in the MoCo
paper, there is an extra BN layer following the res5 stage"). Importing this module registers
it in Detectron2's ``ROI_HEADS_REGISTRY`` (once; a second import is a no-op).
"""

from detectron2.layers import get_norm
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, Res5ROIHeads


class Res5ROIHeadsExtraNorm(Res5ROIHeads):
    """Res5ROIHeads whose res5 stage ends with ``get_norm(cfg.MODEL.RESNETS.NORM)``."""

    def __init__(self, cfg, input_shape):
        super().__init__(cfg, input_shape)
        norm = get_norm(cfg.MODEL.RESNETS.NORM, self.res5[-1].out_channels)
        self.res5.add_module("norm", norm)


if "Res5ROIHeadsExtraNorm" not in ROI_HEADS_REGISTRY:
    ROI_HEADS_REGISTRY.register(Res5ROIHeadsExtraNorm)
