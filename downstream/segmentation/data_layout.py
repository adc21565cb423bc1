"""Point the config's datasets at ``--data-root`` and check the mmseg layout is there before training.

mmseg only fails deep inside the dataloader (or, for an empty folder, trains on nothing), so
every dataset of the train/val/test dataloaders is checked up front: its image and label
folders must exist and hold files, its ``ann_file`` (if any) must exist. A miss is one
UserError naming the path and the layout the task expects.
"""

from __future__ import annotations

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
