"""Pretraining datasets by name, as uint8 arrays with labels (labels feed monitoring only)."""

from __future__ import annotations

from resa_core.data import fashion_mnist
from resa_core.data.fashion_mnist import ImageArray
from resa_core.errors import UserError

DATASETS = ("fashion_mnist",)


def load_train_set(data_cfg: dict) -> ImageArray:
    """The fixed stratified training subset named by the config's ``data`` section."""
    name = data_cfg["name"]
    if name == "fashion_mnist":
        return fashion_mnist.load_subset("train", data_cfg["train_size"], data_cfg["subset_seed"],
                                         data_cfg["root"])
    raise UserError(f"data.name '{name}' unknown; available datasets: {', '.join(DATASETS)}")
