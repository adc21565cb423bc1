"""Fashion-MNIST images and labels stay aligned from the idx files to the transfer metrics.

Two outside truths: torchvision's own ``FashionMNIST`` reader on the same idx files, and a
property no misaligned pipeline can fake: on real Fashion-MNIST raw pixels are far above chance
for k-NN (about 80 % top-1 with 2k training images; chance is 10 %) and for 5-way few-shot
episodes (about 75 % at 5 shots; chance is 20 %). Records are otherwise only range-checked, so
labels permuted against the images anywhere on the way would pass every other test.
"""

import gzip
import json
import shutil

import numpy as np
import pytest

from downstream.cli import main
from resa_core.data.fashion_mnist import candidate_roots, load_split, load_subset
from resa_core.errors import run_cli

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def torchvision_copy(tmp_path):
    """The idx files, uncompressed, where ``torchvision.datasets.FashionMNIST(root)`` reads them."""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in IDX_FILES:
        found = [root / name for root in candidate_roots(None) for name in (stem + ".gz", stem)
                 if (root / name).is_file()]
        assert found, f"{stem} not found: run scripts/get_data.sh"
        opener = gzip.open if found[0].suffix == ".gz" else open
        with opener(found[0], "rb") as source, open(raw / stem, "wb") as target:
            shutil.copyfileobj(source, target)
    return tmp_path


@pytest.mark.parametrize("split", ["train", "test"])
def test_reader_and_subsets_match_torchvisions_reader(tmp_path, split):
    from torchvision.datasets import FashionMNIST

    theirs = FashionMNIST(str(torchvision_copy(tmp_path)), train=split == "train", download=False)
    ours = load_split(split)
    assert np.array_equal(ours.images, theirs.data.numpy())
    assert np.array_equal(ours.labels, theirs.targets.numpy())
    subset = load_subset(split, 1000, seed=0)
    assert np.array_equal(subset.images, theirs.data.numpy()[subset.indices])
    assert np.array_equal(subset.labels, theirs.targets.numpy()[subset.indices])


@pytest.mark.parametrize(("task", "overrides", "metric", "floor"), [
    ("knn", ["train_size=2000", "test_size=500"], "top1_k20", 60.0),
    ("fewshot", ["queries=15", "episodes=100"], "acc_5way5shot", 50.0),
])
def test_raw_pixel_transfer_is_far_above_chance(tmp_path, task, overrides, metric, floor):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [task, "--dataset", "fashion_mnist", "--weights", "pixels", "--run-dir", str(tmp_path),
                       *overrides])
    assert exit_info.value.code == 0
    (record,) = [json.loads(path.read_text()) for path in (tmp_path / "records").rglob("seed*.json")]
    assert record["status"] == "ok"
    assert record["metrics"][metric] > floor, record["metrics"]
