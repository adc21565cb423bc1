"""``python -m downstream.segmentation.prepare {cityscapes,voc-aug} ...``: the mmseg layouts from the raw downloads.

mmseg's tasks read label files that the datasets do not ship; mmseg builds them with its
``tools/dataset_converters`` scripts, which are not part of the mmsegmentation package. These
commands write the same files:

* ``cityscapes ROOT``: Cityscapes ``gtFine_trainvaltest.zip`` unpacked in ROOT holds
  ``gtFine/<split>/<city>/*_gtFine_labelIds.png``; each is written beside it as
  ``*_gtFine_labelTrainIds.png`` (the 19 training classes 0-18, everything else 255), what mmseg
  ``tools/dataset_converters/cityscapes.py`` writes through cityscapesscripts'
  ``json2labelImg(..., 'trainIds')`` (``createTrainIdLabelImgs.py``). The id -> trainId table is
  cityscapesscripts ``helpers/labels.py``. Mapping the id image pixel by pixel gives the same
  file as redrawing the polygons: both draw the same polygons in the same order, and the labels
  json2labelImg skips (id < 0) are skipped in both encodings.
* ``voc-aug DEVKIT SBD``: the SBD release (``benchmark_RELEASE``, Hariharan et al. 2011) gives
  ``DEVKIT/VOC2012/SegmentationClassAug/<id>.png`` from ``SBD/dataset/cls/<id>.mat``
  (``GTcls.Segmentation``) and the split files ``ImageSets/Segmentation/aug.txt`` = SBD
  train+val minus VOC2012 train and val, ``trainaug.txt`` = VOC2012 train + SBD minus VOC2012
  val, as mmseg ``tools/dataset_converters/voc_aug.py`` does (sorted here; 10,582 images in
  ``trainaug.txt`` with the full sets, its ``AUG_LEN``).

Files are written atomically; a rerun rewrites them. Bad input is one ``error:`` line.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from resa_core.atomic import write_bytes_atomic, write_text_atomic
from resa_core.errors import UserError, run_cli

# cityscapesscripts helpers/labels.py: label id -> trainId of the 19 evaluated classes; all other ids -> 255.
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                        26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
IGNORE = 255
VOC_AUG_LEN = 10582  # mmseg tools/dataset_converters/voc_aug.py AUG_LEN: VOC2012 train + SBD - VOC2012 val


def _write_png(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    write_bytes_atomic(path, buffer.getvalue())


def train_ids(label_ids: np.ndarray) -> np.ndarray:
    """A Cityscapes ``labelIds`` image as ``labelTrainIds``."""
    table = np.full(256, IGNORE, dtype=np.uint8)
    for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
        table[label_id] = train_id
    return table[label_ids]


def prepare_cityscapes(root: Path) -> int:
    """Write every ``*_gtFine_labelTrainIds.png`` beside its ``*_gtFine_labelIds.png``; returns the count."""
    sources = sorted((root / "gtFine").glob("*/*/*_gtFine_labelIds.png"))
    if not sources:
        raise UserError(f"no {root}/gtFine/<split>/<city>/*_gtFine_labelIds.png: expected Cityscapes' "
                        "gtFine_trainvaltest.zip unpacked in that folder")
    for source in tqdm(sources, desc="labelTrainIds", unit="image"):
        label_ids = np.asarray(Image.open(source))
        if label_ids.ndim != 2:
            raise UserError(f"{source}: expected a single-channel label id image, got shape {label_ids.shape}")
        _write_png(source.with_name(source.name.replace("_labelIds.png", "_labelTrainIds.png")), train_ids(label_ids))
    return len(sources)


def _ids(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"{path}: split list not found")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def prepare_voc_aug(devkit: Path, sbd: Path) -> dict[str, int]:
    """SegmentationClassAug and aug.txt / trainaug.txt in ``devkit/VOC2012``; returns the split sizes."""
    from scipy.io import loadmat

    voc, cls = devkit / "VOC2012", sbd / "dataset" / "cls"
    splits = voc / "ImageSets" / "Segmentation"
    voc_train, voc_val = _ids(splits / "train.txt"), _ids(splits / "val.txt")
    sbd_ids = _ids(sbd / "dataset" / "train.txt") + _ids(sbd / "dataset" / "val.txt")
    mats = sorted(cls.glob("*.mat"))
    if not mats:
        raise UserError(f"no {cls}/*.mat: expected the SBD release (benchmark_RELEASE) with dataset/cls/")
    out = voc / "SegmentationClassAug"
    out.mkdir(parents=True, exist_ok=True)
    for mat in tqdm(mats, desc="SegmentationClassAug", unit="image"):
        mask = loadmat(str(mat))["GTcls"][0]["Segmentation"][0].astype(np.uint8)  # as voc_aug.py convert_mat
        _write_png(out / f"{mat.stem}.png", mask)
    converted = {mat.stem for mat in mats}
    lists = {"aug": sorted(set(sbd_ids) - set(voc_train + voc_val)),
             "trainaug": sorted(set(voc_train + sbd_ids) - set(voc_val))}
    unconverted = sorted(set(lists["aug"]) - converted)
    if unconverted:
        raise UserError(f"{len(unconverted)} SBD images of the split lists have no {cls}/<id>.mat, "
                        f"e.g. {unconverted[0]}")
    for name, ids in lists.items():
        write_text_atomic(splits / f"{name}.txt", "".join(f"{i}\n" for i in ids))
    return {name: len(ids) for name, ids in lists.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m downstream.segmentation.prepare",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    city = commands.add_parser("cityscapes", help="gtFine *_labelIds.png -> *_labelTrainIds.png")
    city.add_argument("root", type=Path, help="the cityscapes folder (holding gtFine/ and leftImg8bit/)")
    aug = commands.add_parser("voc-aug", help="SBD -> VOC2012 SegmentationClassAug + aug.txt / trainaug.txt")
    aug.add_argument("devkit", type=Path, help="the VOCdevkit folder (holding VOC2012/)")
    aug.add_argument("sbd", type=Path, help="the SBD release folder (benchmark_RELEASE, holding dataset/cls/)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "cityscapes":
        print(f"{prepare_cityscapes(args.root)} label images written as *_gtFine_labelTrainIds.png")
        return 0
    sizes = prepare_voc_aug(args.devkit, args.sbd)
    print(f"aug.txt: {sizes['aug']} images, trainaug.txt: {sizes['trainaug']} images")
    if sizes["trainaug"] != VOC_AUG_LEN:
        print(f"note: the full VOC2012 + SBD give {VOC_AUG_LEN} trainaug images (mmseg voc_aug.py)")
    return 0


if __name__ == "__main__":
    run_cli(main)
