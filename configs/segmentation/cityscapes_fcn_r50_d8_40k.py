# Task cityscapes_fcn_r50_d8_40k: FCN-R50-D8 on Cityscapes (fine), 769x769 crops, 40k iterations, 4 GPUs x 2 images.
# Follows the MMSelfSup benchmark open-mmlab/mmselfsup
#   configs/benchmarks/mmsegmentation/cityscapes/fcn_r50-d8_4xb2-40k_cityscapes-769x769.py
#   (= mmseg configs/fcn/fcn_r50-d8_4xb2-40k_cityscapes-769x769.py: slide inference 769/513,
#   align_corners=True), with the backbone of MMSelfSup's
#   configs/benchmarks/mmsegmentation/_base_/models/fcn_r50-d8.py: mmseg ResNet, SyncBN, norm_eval=False.
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb2-40k_cityscapes-769x769.py'

model = dict(
    pretrained=None,
    backbone=dict(
        type='ResNet',
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=None)))
