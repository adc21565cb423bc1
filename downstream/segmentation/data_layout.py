"""Point the config's datasets at ``--data-root`` and check the mmseg layout is there before training.

mmseg only fails deep inside the dataloader (or, for an empty folder, trains on nothing), so
every dataset of the train/val/test dataloaders is checked up front: its image and label
folders must exist and hold files, its ``ann_file`` (if any) must exist, and every image and
label file the dataset will read must exist. The file list is mmseg's own: the dataset is built
with ``lazy_init=True`` and its ``load_data_list()`` (mmseg ``BaseSegDataset``: the split file's
names, or the images found, each with its ``seg_map_suffix`` label) is checked file by file, so
raw Cityscapes (``*_gtFine_labelIds.png`` only) or a VOC split without its SBD labels stops here.
A miss is one UserError naming the path and the layout the task expects.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path

from resa_core.errors import UserError

LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")


def _datasets(node) -> Iterator[dict]:
    """The leaf dataset dicts under ``node`` (ConcatDataset / RepeatDataset unwrapped)."""
    if "datasets" in node:
        for child in node["datasets"]:
            yield from _datasets(child)
    elif "dataset" in node:
        yield from _datasets(node["dataset"])
    else:
        yield node


def set_data_root(cfg, data_root: str | Path) -> None:
    """Set ``data_root`` of every dataset of the train/val/test dataloaders."""
    for loader in LOADERS:
        if loader in cfg and cfg[loader] is not None:
            for dataset in _datasets(cfg[loader]["dataset"]):
                dataset["data_root"] = str(data_root)


def _has_files(folder: Path) -> bool:
    return any(path.is_file() for path in folder.rglob("*"))


def check_layout(cfg, layout: str) -> None:
    """Raise UserError unless every dataset's folders and annotation files exist (and hold files)."""
    for loader in LOADERS:
        if loader not in cfg or cfg[loader] is None:
            continue
        for dataset in _datasets(cfg[loader]["dataset"]):
            root = Path(dataset.get("data_root") or ".")
            prefix = dataset.get("data_prefix", {})
            needed = [root / prefix[key] for key in ("img_path", "seg_map_path") if prefix.get(key)]
            for folder in needed:
                if not folder.is_dir() or not _has_files(folder):
                    raise UserError(
                        f"{loader}: segmentation data not found: {folder} is missing or empty; "
                        f"expected under --data-root: {layout}"
                    )
            if dataset.get("ann_file"):
                ann_file = root / dataset["ann_file"]
                if not ann_file.is_file():
                    raise UserError(f"{loader}: split file not found: {ann_file}; expected under --data-root: {layout}")
            check_files(dataset, loader, layout)


def listed_files(dataset) -> list[dict]:
    """What mmseg's dataset of config ``dataset`` will read: ``{'img_path': .., 'seg_map_path': ..}`` per sample."""
    from mmseg.registry import DATASETS

    return DATASETS.build(dict(copy.deepcopy(dataset), lazy_init=True)).load_data_list()


def check_files(dataset, loader: str, layout: str) -> None:
    """Raise UserError unless the dataset lists samples and every image and label file of them exists."""
    samples = listed_files(dataset)
    if not samples:
        raise UserError(f"{loader}: no samples in {dataset.get('data_root')}; expected under --data-root: {layout}")
    for key, kind in (("img_path", "image"), ("seg_map_path", "label")):
        missing = [sample[key] for sample in samples if sample.get(key) and not os.path.isfile(sample[key])]
        if missing:
            raise UserError(f"{loader}: {len(missing)} of {len(samples)} {kind} files missing, e.g. {missing[0]}; "
                            f"expected under --data-root: {layout}")
