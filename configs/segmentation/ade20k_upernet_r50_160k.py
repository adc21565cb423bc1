# Task ade20k_upernet_r50_160k: UPerNet-R50 on ADE20K (150 classes), 512x512, 160k iterations, 4 GPUs x 4 images.
# mmseg configs/upernet/upernet_r50_4xb4-160k_ade20k-512x512.py (MMSelfSup has no R50 ADE20K benchmark
# config), with the MMSelfSup benchmark backbone of
#   configs/benchmarks/mmsegmentation/_base_/models/fcn_r50-d8.py: mmseg ResNet, SyncBN, norm_eval=False.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py'

model = dict(
    pretrained=None,
    backbone=dict(
        type='ResNet',
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=None)))
