"""Register the Fashion-MNIST scenes with Detectron2, as its builtin COCO splits are registered.

``fmnist_scenes_train`` / ``fmnist_scenes_val`` point at ``$DETECTRON2_DATASETS/fmnist_scenes``
(default ``./datasets``, Detectron2's own convention in ``detectron2/data/datasets/builtin.py``)
through ``register_coco_instances``, which sets ``evaluator_type="coco"``, the json file and the
image root; the class names are Fashion-MNIST's.
"""

from __future__ import annotations

import os
from pathlib import Path

from resa_core.data.fashion_mnist import CLASS_NAMES
from resa_core.data.fmnist_scenes import coco_splits

SUBDIR = "fmnist_scenes"


def dataset_name(split: str) -> str:
    return f"{SUBDIR}_{split}"


def register_scenes(root: str | Path | None = None) -> None:
    """Register both splits under ``root``; idempotent, and a new root replaces an earlier one.

    Calling it again in the same process (a second run, another test) with the same root changes
    nothing; with another root (``$DETECTRON2_DATASETS`` changed) the splits are registered again
    there, so they never keep pointing at the files of an earlier root.
    """
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import register_coco_instances

    base = Path(root if root is not None else os.environ.get("DETECTRON2_DATASETS", "datasets")) / SUBDIR
    for split, (json_file, image_root) in coco_splits(base).items():
        name = dataset_name(split)
        if name in DatasetCatalog.list():
            meta = MetadataCatalog.get(name)
            if (meta.get("json_file"), meta.get("image_root")) == (str(json_file), str(image_root)):
                continue
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        register_coco_instances(name, {}, str(json_file), str(image_root))
        MetadataCatalog.get(name).set(thing_classes=list(CLASS_NAMES))
