"""Fashion-MNIST scenes: deterministic files, annotations that agree with the pixels, and both engines' loaders.

Real Fashion-MNIST (the Debian package or torchvision's download, scripts/get_data.sh) is read;
the set is tiny (a few 64 px scenes), so the whole module takes seconds besides engine imports.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from PIL import Image

from resa_core.data import fashion_mnist
from resa_core.data.fmnist_scenes import MASK_THRESHOLD, SOURCE_SPLIT, coco_splits, load_coco, make_scenes

SIZE, TRAIN, VAL = 64, 12, 6


def _digest(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    try:
        fashion_mnist.load_split("test")
    except Exception as err:  # noqa: BLE001 (the data is installed by scripts/get_data.sh)
        pytest.skip(f"Fashion-MNIST not available: {err}")
    return make_scenes(tmp_path_factory.mktemp("scenes") / "fmnist_scenes", TRAIN, VAL, SIZE, seed=0)


def _masks(path: Path) -> list[tuple[dict, np.ndarray]]:
    from pycocotools import mask as mask_utils

    data = load_coco(path)
    return [(ann, mask_utils.decode(ann["segmentation"]).astype(bool)) for ann in data["annotations"]]


def test_same_seed_same_bytes_other_seed_other_scenes(scenes, tmp_path):
    again = make_scenes(tmp_path / "again", TRAIN, VAL, SIZE, seed=0)
    other = make_scenes(tmp_path / "other", TRAIN, VAL, SIZE, seed=1)
    first = _digest(scenes)
    assert len(first) == 2 * (TRAIN + VAL) + 2
    assert _digest(again) == first
    changed = [name for name, digest in _digest(other).items() if first.get(name) != digest]
    assert len(changed) > len(first) // 2


def test_fewer_scenes_into_the_same_folder_leave_no_stale_files(scenes, tmp_path):
    """MMSegmentation scans the image folder: a smaller rerun must not keep the larger run's extra scenes."""
    out = make_scenes(tmp_path / "rerun", TRAIN, VAL, SIZE, seed=0)
    make_scenes(out, TRAIN - 5, VAL, SIZE, seed=0)
    for folder in ("images", "semantic"):
        assert sorted(path.name for path in (out / folder / "train").iterdir()) == \
            [f"{index:06d}.png" for index in range(TRAIN - 5)]
    assert _digest(out / "images" / "val") == _digest(scenes / "images" / "val")


def test_boxes_tightly_bound_masks_and_masks_are_the_object_pixels(scenes):
    for split, (json_file, image_dir) in coco_splits(scenes).items():
        data = load_coco(json_file)
        assert len(data["images"]) == {"train": TRAIN, "val": VAL}[split]
        per_image: dict[int, list[np.ndarray]] = {}
        for ann, mask in _masks(json_file):
            rows, cols = np.nonzero(mask)
            x, y, w, h = ann["bbox"]
            assert (x, y, x + w, y + h) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
            assert ann["area"] == mask.sum()
            per_image.setdefault(ann["image_id"], []).append(mask)
        assert set(per_image) == {image["id"] for image in data["images"]}  # 1-4 objects, never none
        for image in data["images"]:
            pixels = np.asarray(Image.open(image_dir / image["file_name"]))
            masks = np.stack(per_image[image["id"]])
            assert masks.sum(0).max() == 1  # objects never overlap
            assert 1 <= len(masks) <= 4
            union = masks.any(0)
            assert (pixels[union] > MASK_THRESHOLD).all() and (pixels[~union] == 0).all()


def test_semantic_map_is_the_instance_masks_labelled(scenes):
    for split, (json_file, _) in coco_splits(scenes).items():
        expected: dict[str, np.ndarray] = {}
        names = {image["id"]: image["file_name"] for image in load_coco(json_file)["images"]}
        for ann, mask in _masks(json_file):
            name = names[ann["image_id"]]
            canvas = expected.setdefault(name, np.zeros((SIZE, SIZE), np.uint8))
            canvas[mask] = ann["category_id"]  # category ids 1..10 = semantic labels (0: background)
        for name, canvas in expected.items():
            assert np.array_equal(np.asarray(Image.open(scenes / "semantic" / split / name)), canvas)


def test_objects_come_from_the_split_of_their_scenes(scenes):
    for split, fmnist_split in (("train", "train"), ("val", "test")):  # issue 17: test objects for evaluation
        json_file, _ = coco_splits(scenes)[split]
        source = fashion_mnist.load_split(fmnist_split)
        anns = load_coco(json_file)["annotations"]
        indices = np.array([ann["fashion_mnist_index"] for ann in anns])
        labels = np.array([ann["category_id"] - 1 for ann in anns])
        assert np.array_equal(source.labels[indices], labels)
        assert len(set(labels.tolist())) >= 4


def test_pycocotools_and_detectron2_read_the_coco_files(scenes, tmp_path):
    from pycocotools.coco import COCO

    json_file, _ = coco_splits(scenes)["val"]
    coco = COCO(str(json_file))
    assert len(coco.getImgIds()) == VAL and len(coco.getCatIds()) == 10
    require("detectron2", "bash scripts/install_detection.sh")
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from downstream.scenes.detectron2_sets import dataset_name, register_scenes

    names = [dataset_name(split) for split in SOURCE_SPLIT]
    try:
        register_scenes(tmp_path / "earlier_root")  # an earlier run in this process, another root
        register_scenes(scenes.parent)  # must replace it: a second registration is neither an error nor stale
        register_scenes(scenes.parent)  # and the same root again changes nothing
        assert MetadataCatalog.get(dataset_name("val")).json_file == str(json_file)
        dicts = DatasetCatalog.get(dataset_name("val"))
        assert len(dicts) == VAL
        assert sum(len(d["annotations"]) for d in dicts) == len(coco.getAnnIds())
        first = dicts[0]["annotations"][0]
        ann = coco.loadAnns(coco.getAnnIds(imgIds=[dicts[0]["image_id"]]))[0]
        assert first["category_id"] == ann["category_id"] - 1  # contiguous ids 0..9
        assert MetadataCatalog.get(dataset_name("val")).evaluator_type == "coco"
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_mmseg_reads_the_semantic_layout_through_the_task_config(scenes):
    require("mmseg", "bash scripts/install_segmentation.sh")
    from mmengine.config import Config

    from downstream.segmentation.data_layout import check_layout, set_data_root
    from downstream.segmentation.tasks import seg_task
    from resa_core.mmseg_import import import_mmseg

    import_mmseg()
    from mmseg.registry import DATASETS
    from mmseg.utils import register_all_modules

    register_all_modules()
    task = seg_task("fmnist_scenes_fcn_r18_d8")
    cfg = Config.fromfile(str(task.config_path))
    set_data_root(cfg, scenes)
    check_layout(cfg, task.layout)
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(dataset) == VAL and dataset.metainfo["classes"][0] == "background"
    sample = dataset[0]
    name = Path(sample["data_samples"].img_path).name
    label = sample["data_samples"].gt_sem_seg.data.numpy()[0]
    assert np.array_equal(label, np.asarray(Image.open(scenes / "semantic" / "val" / name)))
