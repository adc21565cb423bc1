# Task fmnist_scenes_fcn_r18_d8: FCN-R18-D8 on Fashion-MNIST scenes (96 px, background + 10 classes), the
# demo's CPU-sized semantic segmentation task, 1 process x 8 images.
# Model: mmseg configs/fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py (depth 18, FCNHead in_channels 512,
#   channels 128) on mmseg configs/_base_/models/fcn_r50-d8.py (dilations (1,1,2,4), strides (1,2,1,1),
#   contract_dilation), with the MMSelfSup benchmark backbone (configs/benchmarks/mmsegmentation/_base_/
#   models/fcn_r50-d8.py: mmseg ResNet with the torchvision 7x7 stem, norm_eval=False, init_cfg=Pretrained).
# Runtime: mmseg configs/_base_/default_runtime.py; SGD momentum 0.9, wd 5e-4 and poly decay (power 0.9,
#   eta_min 1e-4) from mmseg configs/_base_/schedules/schedule_20k.py.
# Demo-only deltas (docs/demo.md): BN (one CPU process), no auxiliary head, lr 0.05 and 300 iterations
#   (a short schedule on a 400-image set), 96 px without resize/crop (the scenes are 96 px),
#   Fashion-MNIST pixel statistics (0.2860 / 0.3530 x 255, resa_core/data/tensors.py, the normalisation
#   the demo encoders were pretrained with).
_base_ = ['mmseg::_base_/default_runtime.py']

crop_size = (96, 96)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[72.93, 72.93, 72.93],
    std=[90.015, 90.015, 90.015],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg=dict(type='Pretrained', checkpoint=None)),
    decode_head=dict(
        type='FCNHead',
        in_channels=512,
        in_index=3,
        channels=128,
        num_convs=2,
        concat_input=True,
        dropout_ratio=0.1,
        num_classes=11,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

dataset_type = 'BaseSegDataset'
data_root = 'data/fmnist_scenes'
metainfo = dict(
    classes=('background', 'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker',
             'Bag', 'Ankle boot'),
    palette=[[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128], [0, 128, 128],
             [128, 128, 128], [64, 0, 0], [192, 0, 0], [64, 128, 0]])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
_dataset = dict(type=dataset_type, data_root=data_root, metainfo=metainfo, img_suffix='.png',
                seg_map_suffix='.png', reduce_zero_label=False)
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**_dataset, data_prefix=dict(img_path='images/train', seg_map_path='semantic/train'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**_dataset, data_prefix=dict(img_path='images/val', seg_map_path='semantic/val'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

optimizer = dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=300, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300, val_interval=300)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
