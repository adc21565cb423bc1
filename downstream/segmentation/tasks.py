"""The segmentation tasks: name -> mmseg config, dataset, backbone arch and the reference setup.

``reference_gpus`` x ``batch_per_gpu`` is the total batch the config's schedule was tuned for
(the ``4xb4`` / ``4xb2`` / ``8xb2`` in the mmseg config names cited in each config file);
:mod:`downstream.segmentation.scaling` scales lr and iterations when fewer GPUs run it.
``layout`` is the mmseg dataset layout under ``--data-root`` (mmseg docs/en/user_guides/2_dataset_prepare.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from resa_core.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "segmentation"

VOC_LAYOUT = (
    "VOCdevkit/VOC2012 with JPEGImages/*.jpg, SegmentationClass/*.png, SegmentationClassAug/*.png and "
    "ImageSets/Segmentation/{train,val,aug}.txt (SegmentationClassAug and aug.txt come from SBD: "
    "python -m downstream.segmentation.prepare voc-aug <data-root>/VOCdevkit <benchmark_RELEASE>, "
    "as mmseg tools/dataset_converters/voc_aug.py)"
)
CITYSCAPES_LAYOUT = (
    "cityscapes with leftImg8bit/{train,val}/<city>/*_leftImg8bit.png and "
    "gtFine/{train,val}/<city>/*_gtFine_labelTrainIds.png (raw Cityscapes has *_gtFine_labelIds.png: "
    "python -m downstream.segmentation.prepare cityscapes <data-root>/cityscapes writes them, "
    "as mmseg tools/dataset_converters/cityscapes.py)"
)
ADE20K_LAYOUT = (
    "ade/ADEChallengeData2016 with images/{training,validation}/*.jpg and "
    "annotations/{training,validation}/*.png"
)


@dataclass(frozen=True)
class SegTask:
    name: str
    dataset: str  # the record's dataset name
    arch: str  # the registered backbone arch (pretrain.models) the config's backbone takes
    reference_gpus: int
    batch_per_gpu: int
    subdir: str  # the dataset folder under --data-root (mmseg's default data_root minus its 'data/')
    layout: str

    @property
    def config_path(self) -> Path:
        return CONFIG_DIR / f"{self.name}.py"


FMNIST_SCENES_LAYOUT = (
    "fmnist_scenes with images/{train,val}/*.png and semantic/{train,val}/*.png "
    "(python -m downstream make-scenes --out <data-root>/fmnist_scenes)"
)
ADE = "ade/ADEChallengeData2016"
TASKS = {
    task.name: task
    for task in (
        SegTask("voc12aug_fcn_r50_d8_20k", "voc12aug", "resnet50", 4, 4, "VOCdevkit/VOC2012", VOC_LAYOUT),
        SegTask("cityscapes_fcn_r50_d8_40k", "cityscapes", "resnet50", 4, 2, "cityscapes", CITYSCAPES_LAYOUT),
        SegTask("ade20k_upernet_r50_160k", "ade20k", "resnet50", 4, 4, ADE, ADE20K_LAYOUT),
        SegTask("ade20k_upernet_vit_s16_160k", "ade20k", "vit_small_patch16", 8, 2, ADE, ADE20K_LAYOUT),
        # the demo's CPU-sized task (configs/segmentation/fmnist_scenes_fcn_r18_d8.py)
        SegTask("fmnist_scenes_fcn_r18_d8", "fmnist_scenes", "resnet18", 1, 8, "fmnist_scenes", FMNIST_SCENES_LAYOUT),
    )
}


def seg_task(name: str) -> SegTask:
    if name not in TASKS:
        raise UserError(f"unknown segmentation task {name!r}; choose one of {', '.join(sorted(TASKS))}")
    return TASKS[name]
