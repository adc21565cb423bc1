# Task voc12aug_fcn_r50_d8_20k: FCN-R50-D8 on Pascal VOC 2012 + SBD aug, 512x512, 20k iterations, 4 GPUs x 4 images.
# Follows the MMSelfSup benchmark open-mmlab/mmselfsup
#   configs/benchmarks/mmsegmentation/voc12aug/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py
#   (= mmseg configs/fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py), with the backbone of MMSelfSup's
#   configs/benchmarks/mmsegmentation/_base_/models/fcn_r50-d8.py: mmseg ResNet (torchvision-style
#   7x7 stem, not ResNetV1c's deep stem), SyncBN, norm_eval=False, init_cfg=Pretrained.
# `python -m downstream segmentation` fills init_cfg.checkpoint with the converted backbone.
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'

model = dict(
    pretrained=None,
    backbone=dict(
        type='ResNet',
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=None)))
