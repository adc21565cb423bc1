"""Task configs: one strict schema per task = the common keys below + the task's own keys.

Unknown keys and wrongly typed values are errors (:func:`resa_core.config.load_config`);
the resolved dict is stored in the result record together with its hash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from downstream.transforms import INTERPOLATIONS, STATS
from resa_core.config import load_config
from resa_core.errors import UserError

COMMON_SCHEMA = {
    "data_root": None,  # None: resa_core finds the dataset (env var, Debian package, ./data)
    "image_size": 32,  # the demo's pretraining resolution (28 px Fashion-MNIST resized to 32)
    "train_size": 10000,  # stratified subset of the train split (the demo's pretraining subset); null: all
    "test_size": 2000,  # stratified subset of the test split; null: all
    "subset_seed": 0,  # fixes the subsets; the same for every backbone
    "batch_size": 256,  # feature extraction batch
    "normalization": "fashion_mnist",  # key of downstream.transforms.STATS
    "resize_size": None,  # shorter side before the centre crop (catalog datasets); null: image_size
    "resize_interpolation": "bicubic",  # of that resize: bicubic (DINO eval) or bilinear (downstream.transforms)
    "label_subset": None,  # restrict the train role: null, 1percent or 10percent (SimCLR lists on ImageNet)
    "num_workers": 2,  # DataLoader workers reading catalog datasets
}


def resolve_config(
    task_schema: Mapping, path: str | Path | None = None, overrides: Sequence[str] = (),
    dataset_defaults: Mapping | None = None,
) -> dict:
    """Common schema <- dataset defaults (with the task's image view), + task schema <- YAML file <- overrides."""
    overlap = set(COMMON_SCHEMA) & set(task_schema)
    if overlap:
        raise ValueError(f"task schema redefines common keys {sorted(overlap)}")
    config = load_config({**COMMON_SCHEMA, **(dataset_defaults or {}), **task_schema}, path, overrides)
    if config["normalization"] not in STATS:
        raise UserError(f"normalization '{config['normalization']}' unknown; expected one of {sorted(STATS)}")
    if config["resize_size"] is not None:
        require_positive_int(config, "resize_size")
    if config["resize_interpolation"] not in INTERPOLATIONS:
        raise UserError(f"config key 'resize_interpolation' must be one of {sorted(INTERPOLATIONS)}, "
                        f"got {config['resize_interpolation']!r}")
    if isinstance(config["num_workers"], bool) or not isinstance(config["num_workers"], int) or config[
            "num_workers"] < 0:
        raise UserError(f"config key 'num_workers' must be a non-negative integer, got {config['num_workers']!r}")
    for key in ("image_size", "batch_size"):
        require_positive_int(config, key)
    for key in ("train_size", "test_size"):
        if config[key] is not None:
            require_positive_int(config, key)
    return config


def require_positive_int(config: Mapping, key: str) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UserError(f"config key '{key}' must be a positive integer, got {value!r}")
    return value


def require_positive_int_list(config: Mapping, key: str) -> list[int]:
    values = config[key]
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in values):
        raise UserError(f"config key '{key}' must be a non-empty list of positive integers, got {values!r}")
    return list(values)
