"""Check that every split a config names exists in Detectron2's standard layout, before training.

Detectron2 registers COCO and VOC under ``$DETECTRON2_DATASETS`` (default ``./datasets``) at
import time (``detectron2/data/datasets/builtin.py``); a missing file would otherwise surface as
a traceback deep in a data loader worker. Here it is one line naming the path and the layout.
"""

from __future__ import annotations

import os
from pathlib import Path

from detectron2.data import DatasetCatalog, MetadataCatalog

from downstream.scenes.detectron2_sets import register_scenes
from resa_core.errors import UserError


def expected_files(name: str) -> list[Path]:
    """The files/folders Detectron2's loader for builtin dataset ``name`` reads."""
    meta = MetadataCatalog.get(name)
    if meta.get("json_file"):
        return [Path(meta.json_file), Path(meta.image_root)]
    if meta.get("dirname"):
        root = Path(meta.dirname)
        return [root / "Annotations", root / "JPEGImages", root / "ImageSets" / "Main" / f"{meta.split}.txt"]
    return []


def check_datasets(names: list[str] | tuple[str, ...]) -> None:
    """UserError naming the first split whose files are missing (or an unregistered name)."""
    root = os.environ.get("DETECTRON2_DATASETS", "datasets")
    register_scenes()  # Fashion-MNIST scenes: registered like the builtin sets, under the same root
    for name in names:
        if name not in DatasetCatalog.list():
            raise UserError(f"dataset {name!r} is not registered in Detectron2")
        missing = [str(path) for path in expected_files(name) if not path.exists()]
        if missing:
            expected = ", ".join(str(path) for path in expected_files(name))
            raise UserError(f"dataset {name}: missing {', '.join(missing)}; Detectron2 expects {expected} "
                            f"under $DETECTRON2_DATASETS={root}")
