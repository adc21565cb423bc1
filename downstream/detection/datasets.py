"""Check that every split a config names exists in Detectron2's standard layout, before training.

Detectron2 registers COCO and VOC under ``$DETECTRON2_DATASETS`` (default ``./datasets``) at
import time (``detectron2/data/datasets/builtin.py``: ``coco/...``, ``VOC2007``, ``VOC2012``); a
missing file would otherwise surface as a traceback deep in a data loader worker. Here it is one
line naming the path and the layout. Checked, in order:

* the annotation file / folders and the split list the loader opens;
* VOC as its tarballs unpack (``VOCdevkit/VOC2007``, ``VOCdevkit/VOC2012``, the layout of
  ``VOCtrainval_06-Nov-2007.tar``) is accepted: the split is registered again at that path, logged;
* every image file of the split: the split's records are loaded with Detectron2's own loader
  (``DatasetCatalog.get``, what training does next) and each ``file_name`` must exist.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_pascal_voc

from downstream.scenes.detectron2_sets import register_scenes
from resa_core.errors import UserError

log = logging.getLogger("downstream.detection")
DEVKIT = "VOCdevkit"


def expected_files(name: str) -> list[Path]:
    """The files/folders Detectron2's loader for builtin dataset ``name`` reads."""
    meta = MetadataCatalog.get(name)
    if meta.get("json_file"):
        return [Path(meta.json_file), Path(meta.image_root)]
    if meta.get("dirname"):
        root = Path(meta.dirname)
        return [root / "Annotations", root / "JPEGImages", root / "ImageSets" / "Main" / f"{meta.split}.txt"]
    return []


def use_voc_devkit(name: str) -> bool:
    """Re-register VOC split ``name`` at ``<root>/VOCdevkit/VOC20xx`` when only that exists; True if done."""
    meta = MetadataCatalog.get(name)
    if not meta.get("dirname") or Path(meta.dirname).exists():
        return False
    devkit = Path(meta.dirname).parent / DEVKIT / Path(meta.dirname).name
    if not devkit.is_dir():
        return False
    classes, split, year, evaluator = list(meta.thing_classes), meta.split, meta.year, meta.get("evaluator_type")
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)
    register_pascal_voc(name, str(devkit), split, year, class_names=classes)
    if evaluator:
        MetadataCatalog.get(name).evaluator_type = evaluator
    log.info("dataset %s: using %s (the VOC tarball's layout)", name, devkit)
    return True


def check_image_files(name: str) -> int:
    """Load split ``name`` with Detectron2's loader; UserError unless every image file exists. Returns the count."""
    try:
        records = DatasetCatalog.get(name)
    except OSError as err:
        raise UserError(f"dataset {name}: {' '.join(str(err).split())}") from None
    missing = [record["file_name"] for record in records if not os.path.isfile(record["file_name"])]
    if missing:
        raise UserError(f"dataset {name}: {len(missing)} of {len(records)} image files missing, e.g. {missing[0]}")
    return len(records)


def check_datasets(names: list[str] | tuple[str, ...]) -> None:
    """UserError naming the first split whose files are missing (or an unregistered name)."""
    root = os.environ.get("DETECTRON2_DATASETS", "datasets")
    register_scenes()  # Fashion-MNIST scenes: registered like the builtin sets, under the same root
    for name in names:
        if name not in DatasetCatalog.list():
            raise UserError(f"dataset {name!r} is not registered in Detectron2")
        use_voc_devkit(name)
        missing = [str(path) for path in expected_files(name) if not path.exists()]
        if missing:
            expected = ", ".join(str(path) for path in expected_files(name))
            devkit = MetadataCatalog.get(name).get("dirname")
            also = f" (or {DEVKIT}/{Path(devkit).name}/..., as VOC's tarballs unpack)" if devkit else ""
            raise UserError(f"dataset {name}: missing {', '.join(missing)}; Detectron2 expects {expected} "
                            f"under $DETECTRON2_DATASETS={root}{also}")
        log.info("dataset %s: %d images, all present", name, check_image_files(name))
