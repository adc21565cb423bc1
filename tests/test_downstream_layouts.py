"""resa_core.data.catalog on tiny on-disk datasets written in each dataset's real layout.

The images are real: foolbox's bundled CIFAR-10/100 samples (``pip install --no-deps
foolbox==3.3.4``; file names ``<dataset>_<index>_<label>.png``) and Fashion-MNIST from its
idx files. The writers here are imported by the other downstream tests.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from PIL import Image

from resa_core.data.catalog import CATALOG, FC100_SUPERCLASSES, imagenet_subset_indices, open_dataset, read_list
from resa_core.errors import UserError


def require_foolbox_dir() -> Path:
    """foolbox's ``data/`` folder of real dataset samples (installed by the test command).

    Located without importing foolbox (its import needs eagerpy, which ``--no-deps`` skips).
    """
    spec = importlib.util.find_spec("foolbox")
    if spec is None or not spec.submodule_search_locations:
        require("foolbox", "pip install --no-deps foolbox==3.3.4")  # skips outside CI, fails in CI
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def foolbox_samples(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """foolbox's real 32x32 samples of ``cifar10`` / ``cifar100``: uint8 (N, 32, 32, 3), labels (N,)."""
    folder = require_foolbox_dir()
    files = sorted(folder.glob(f"{dataset}_*.png"))
    images = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in files])
    labels = np.array([int(path.stem.rsplit("_", 1)[1]) for path in files])
    return images, labels


def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)


def write_cifar10(root: Path, repeats: int = 1) -> Path:
    """The python-version layout; foolbox's 20 samples (tiled ``repeats`` times) in every batch."""
    images, labels = foolbox_samples("cifar10")
    images, labels = np.tile(images, (repeats, 1, 1, 1)), np.tile(labels, repeats)
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    folder = root / "cifar-10-batches-py"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        _pickle(folder / name, {"data": rows, "labels": labels.tolist()})
    _pickle(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    return root


def coarse_of(fine: np.ndarray) -> np.ndarray:
    """A fine -> coarse map for fixtures (the real one is in CIFAR-100's pickles: read, not hard-coded)."""
    return np.asarray(fine) % 20


def write_cifar100(root: Path, repeats: int = 1) -> Path:
    images, labels = foolbox_samples("cifar100")
    images, labels = np.tile(images, (repeats, 1, 1, 1)), np.tile(labels, repeats)
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    folder = root / "cifar-100-python"
    for name in ("train", "test"):
        _pickle(folder / name, {"data": rows, "fine_labels": labels.tolist(),
                                "coarse_labels": coarse_of(labels).tolist()})
    _pickle(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)],
                              "coarse_label_names": [f"s{i}" for i in range(20)]})
    return root


def write_image_tree(folder: Path, per_class: dict[str, int], size: int = 16, seed: int = 0) -> Path:
    """``folder/<class>/<class>_<i>.png``: crops of foolbox's real CIFAR-10 samples."""
    images, _ = foolbox_samples("cifar10")
    rng = np.random.default_rng(seed)
    for cls, count in per_class.items():
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = images[rng.integers(len(images))]
            x, y = rng.integers(0, 32 - size + 1, 2)
            Image.fromarray(image[y : y + size, x : x + size]).save(folder / cls / f"{cls}_{i}.png")
    return folder


def write_cub(root: Path, classes: int = 3, per_class: int = 4) -> Path:
    """CUB_200_2011 index files + images; the first half of each class is ``is_training_image`` 1."""
    base = root / "CUB_200_2011"
    names = [f"{i:03d}.Bird_{i}" for i in range(1, classes + 1)]
    write_image_tree(base / "images", {name: per_class for name in names})
    lines = {"images": [], "train_test_split": [], "image_class_labels": []}
    image_id = 0
    for class_id, name in enumerate(names, 1):
        for i in range(per_class):
            image_id += 1
            lines["images"].append(f"{image_id} {name}/{name}_{i}.png")
            lines["train_test_split"].append(f"{image_id} {int(i < per_class // 2)}")
            lines["image_class_labels"].append(f"{image_id} {class_id}")
    for table, rows in lines.items():
        (base / f"{table}.txt").write_text("\n".join(rows) + "\n")
    (base / "classes.txt").write_text("\n".join(f"{i} {n}" for i, n in enumerate(names, 1)) + "\n")
    return root


def test_cifar_fine_and_coarse_labels(tmp_path):
    write_cifar100(tmp_path)
    _, fine = foolbox_samples("cifar100")
    data = open_dataset("cifar100", "train", tmp_path)
    coarse = open_dataset("cifar100_coarse", "test", tmp_path)
    image, label = data[3]
    assert image.mode == "RGB" and image.size == (32, 32) and label == fine[3]
    assert data.num_classes == 100 and coarse.num_classes == 20
    np.testing.assert_array_equal(coarse.labels, coarse_of(fine))
    np.testing.assert_array_equal(np.asarray(image), foolbox_samples("cifar100")[0][3])


def test_cifar10_and_transform(tmp_path):
    write_cifar10(tmp_path)
    data = open_dataset("cifar10", "test", tmp_path, transform=lambda image: np.asarray(image).mean())
    value, label = data[0]
    assert isinstance(value, float) and data.num_classes == 10 and len(data) == 20


def test_fc100_split_is_class_disjoint_by_superclass(tmp_path):
    write_cifar100(tmp_path)
    _, fine = foolbox_samples("cifar100")
    sizes = {}
    for split, superclasses in FC100_SUPERCLASSES.items():
        data = open_dataset("fc100", split, tmp_path)
        expected = sorted({int(f) for f in fine if coarse_of(f) in superclasses})
        assert [int(name[1:]) for name in data.class_names] == expected
        sizes[split] = len(data)
    assert sum(sizes.values()) == 2 * len(fine)  # train + test pickles pooled, every image in one split


def test_cub_official_layout(tmp_path):
    write_cub(tmp_path)
    train, test = open_dataset("cub200", "train", tmp_path), open_dataset("cub200", "test", tmp_path)
    assert len(train) == len(test) == 6 and train.num_classes == 3
    assert train.class_names[0] == "001.Bird_1" and sorted(set(test.labels)) == [0, 1, 2]
    image, _ = test[0]
    assert image.size == (16, 16)


def test_imagefolder_and_imagenet100_lists(tmp_path):
    write_image_tree(tmp_path / "train", {"a": 2, "b": 3})
    data = open_dataset("imagefolder", "train", tmp_path)
    assert data.class_names == ("a", "b") and list(data.labels) == [0, 0, 1, 1, 1]
    assert len(read_list("imagenet100.txt")) == 100
    assert len(read_list("imagenet_1percent.txt")) == 12811
    assert len(read_list("imagenet_10percent.txt")) == 128116


def write_imagenet_train(root, names):
    """Empty ``train/<wnid>/<name>`` files: ImageFolder lists files by extension, the list match reads names only."""
    for name in names:
        folder = root / "train" / name.split("_")[0]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).touch()


@pytest.fixture(scope="module")
def imagenet_1percent_tree(tmp_path_factory):
    """An ImageNet train split holding exactly the 12,811 images of the SimCLR 1% list, plus two others."""
    root = tmp_path_factory.mktemp("imagenet")
    write_imagenet_train(root, read_list("imagenet_1percent.txt") + ["n01440764_1.JPEG", "n00000000_1.JPEG"])
    return root


def test_imagenet_subset_list_matches_file_names(imagenet_1percent_tree):
    data = open_dataset("imagenet", "train", imagenet_1percent_tree)
    subset = data.subset(imagenet_subset_indices(data, 1))
    assert sorted(Path(f).name for f in subset.files) == sorted(read_list("imagenet_1percent.txt"))


def test_imagenet_subset_refuses_a_partial_copy(imagenet_1percent_tree):
    """A train split missing listed images would silently shrink the 1% split (issue 15 item 14)."""
    data = open_dataset("imagenet", "train", imagenet_1percent_tree)
    dropped = 5
    partial = data.subset([i for i in range(len(data)) if i != dropped])  # as if one file were not copied
    name = Path(data.files[dropped]).name
    with pytest.raises(UserError, match=f"1 of the 12811 images of the imagenet 1% list .*e.g. {name}"):
        imagenet_subset_indices(partial, 1)


def test_train_size_with_a_label_subset_is_refused_not_shrunk(imagenet_1percent_tree):
    from downstream.datasets import dataset_spec

    config = {"data_root": str(imagenet_1percent_tree), "subset_seed": 0, "label_subset": "1percent"}
    assert len(dataset_spec("imagenet").load("train", {**config, "train_size": None})) == 12811
    with pytest.raises(UserError, match="of the 12811 images of the imagenet 1% list .*train_size"):
        dataset_spec("imagenet").load("train", {**config, "train_size": 5000})


def test_imagenet100_subset_needs_only_its_classes_images(imagenet_1percent_tree):
    classes = set(read_list("imagenet100.txt"))
    mine = [name for name in read_list("imagenet_1percent.txt") if name.split("_")[0] in classes]
    data = open_dataset("imagenet100", "train", imagenet_1percent_tree)
    assert len(imagenet_subset_indices(data, 1, "imagenet100")) == len(mine)
    with pytest.raises(UserError, match=f"{12811 - len(mine)} of the 12811 images of the imagenet 1% list"):
        imagenet_subset_indices(data, 1)  # as ImageNet-1k, the other 900 classes' images are missing


def test_fashion_mnist_is_rgb():
    data = open_dataset("fashion_mnist", "test")
    image, label = data[0]
    assert image.mode == "RGB" and image.size == (28, 28) and data.num_classes == 10 and len(data) == 10000


@pytest.mark.parametrize("name", sorted(set(CATALOG) - {"fashion_mnist", "imagefolder"}))
def test_missing_root_is_one_line_user_error(tmp_path, name):
    split = CATALOG[name].splits[-1]
    with pytest.raises(UserError, match="expected layout") as info:
        open_dataset(name, split, tmp_path)
    assert "\n" not in str(info.value)


def test_unknown_split_and_name(tmp_path):
    with pytest.raises(UserError, match="unknown split"):
        open_dataset("cifar10", "validation", tmp_path)
    with pytest.raises(UserError, match="unknown dataset"):
        open_dataset("mnist", "train", tmp_path)


def write_pets(root: Path, breeds: tuple[str, ...] = ("Abyssinian", "beagle", "Bengal"), per_split: int = 6) -> Path:
    """OxfordIIITPet layout: ``images/<Breed>_<i>.jpg`` and ``annotations/{trainval,test}.txt``."""
    base = root / "oxford-iiit-pet"
    images, _ = foolbox_samples("cifar10")
    (base / "images").mkdir(parents=True)
    (base / "annotations").mkdir()
    for split_number, split in enumerate(("trainval", "test")):
        rows = []
        for class_id, breed in enumerate(breeds, 1):
            for i in range(per_split):
                image_id = f"{breed}_{split_number * 100 + i}"
                Image.fromarray(images[(class_id * 7 + i) % len(images)]).save(base / "images" / f"{image_id}.jpg")
                rows.append(f"{image_id} {class_id} {1 + breed[0].islower()} 1")
        (base / "annotations" / f"{split}.txt").write_text("\n".join(rows) + "\n")
    return root


def test_pets_layout(tmp_path):
    write_pets(tmp_path)
    data = open_dataset("pets", "test", tmp_path)
    assert data.class_names == ("Abyssinian", "Beagle", "Bengal") and len(data) == 18
    assert data[0][0].mode == "RGB"


def test_dtd_layout_partition_one(tmp_path):
    base = tmp_path / "dtd" / "dtd"  # torchvision DTD: the archive extracted inside <root>/dtd
    write_image_tree(base / "images", {"banded": 2, "woven": 2})
    (base / "labels").mkdir()
    for split in ("train", "val", "test"):
        (base / "labels" / f"{split}1.txt").write_text("banded/banded_0.png\nwoven/woven_1.png\n")
    data = open_dataset("dtd", "val", tmp_path)
    assert data.class_names == ("banded", "woven") and list(data.labels) == [0, 1]
