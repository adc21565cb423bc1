"""Named image datasets on local disk, opened through torchvision's dataset classes (never downloaded).

API (used by pretraining and evaluation alike)::

    from resa_core.data.catalog import open_dataset, CATALOG
    data = open_dataset("cifar100_coarse", "train", root="data/cifar100", transform=None)
    image, label = data[0]          # PIL RGB image (transform applied if given), int label
    data.num_classes, data.labels   # class count; every item's label as an int64 array (no decoding)
    data.class_names                # names in label order
    small = data.subset(indices)    # same dataset restricted to ``indices`` (e.g. a 1% split list)
    data.files                      # per-item file names where images are files, else None
    with data.open_image(0) as im:  # the file opened, not yet decoded (JPEG: reduced-size decoding
        ...                         # with PIL draft stays possible), closed on exit; else the image

``open_dataset(name, split, root=None, transform=None)`` returns a :class:`LabelledImages`
(a ``torch.utils.data.Dataset``). ``root=None`` means ``$RESA_DATA/<default_dir>`` (``$RESA_DATA``
defaults to ``./data``). A missing or malformed root raises one-line :class:`UserError` naming
the layout expected (``CATALOG[name].layout``); ``CATALOG[name].splits`` lists the splits.

Names, splits and the layouts (those of the torchvision classes, i.e. the official archives
extracted under ``root``):

* ``cifar10``, ``cifar100``, ``cifar100_coarse`` (the 20 superclass labels of the same images,
  ReSA Table 7), ``fc100``: train/test pickles of the python version. torchvision verifies
  their md5 sums; here only their presence is checked (any truncated pickle fails to load).
* ``fc100``: CIFAR-100's 600 images per class (train + test pickles pooled) split by
  superclass into 60/20/20 classes (Oreshkin et al. 2018, TADAM; the split of
  ElementAI/TADAM), splits ``train``/``val``/``test``, labels ``0..C-1`` within the split.
* ``imagenet``: ``root/{train,val}/<wnid>/*.JPEG`` (ImageFolder; the val images sorted into
  class folders as usual); ``imagenet100``: the same layout, restricted to the 100 classes of
  Tian et al. 2020 (CMC) shipped in ``lists/imagenet100.txt``.
* ``imagefolder``: ``root/<split>/<class>/*`` for any split name.
* ``plant_disease``: ``root/<class>/*`` (the cross-domain few-shot benchmark of Guo et al.
  2020 samples episodes from all images), split ``test``.
* ``cub200_novel`` (one split, ``test``): the cross-domain few-shot protocol of DSA Table VI
  ("standard cross-domain few-shot setting"): only the 50 *novel* classes of Chen et al. 2019's
  CUB split (wyharveychen/CloserLookFewShot ``filelists/CUB/write_CUB_filelist.py``: class folders
  sorted by name, index ``i % 4 == 3``), every image of those classes, labels renumbered 0..49. Reads
  CUB-200-2011 (its index files, as ``cub200``) or the original CUB-200 (2010, 6,033 images; DSA
  Section IV-A's count) as ``images/<class folder>/*.jpg``.
* ``cub200``: CUB-200-2011 with its official ``images.txt``, ``train_test_split.txt`` and
  ``image_class_labels.txt`` under ``root/CUB_200_2011/`` (or ``root`` itself).
* ``pets`` (OxfordIIITPet trainval/test), ``food101`` (train/test), ``flowers102``
  (train/val/test), ``aircraft`` (FGVCAircraft, 100 variants, train/val/test), ``dtd``
  (partition 1, train/val/test), ``cars`` (StanfordCars train/test): torchvision's classes
  with ``download=False``.
* ``fashion_mnist``: the idx files found by :mod:`resa_core.data.fashion_mnist`, grey
  replicated to RGB.
* ``voc2007`` (multi-label): PASCAL VOC 2007 classification, ``root[/VOCdevkit]/VOC2007/{JPEGImages,
  Annotations,ImageSets/Main/{train,val,trainval,test}.txt}`` (or ``root`` itself), the 20 classes of
  ``VOC_CLASSES``. An image is positive for every class with an object in its XML annotation
  (difficult ones included). Its label is that set as a **bit mask** (``sum 2**class``), so the
  int64 label machinery is unchanged; :func:`multilabel_targets` decodes it to an ``(N, 20)`` 0/1
  matrix. Only tasks that know this (logreg-transfer) can use it.
* ``caltech101``: ``torchvision.datasets.Caltech101``'s layout (``root/caltech101/101_ObjectCategories``),
  all 102 folders as classes (BACKGROUND_Google included, as the 102 classes of Ericsson et al.'s
  ``LINEAR_DATASETS``); split ``train`` = 30 images per class drawn with ``default_rng(0)``, ``test`` = the rest.
* ``sun397``: ``torchvision.datasets.SUN397``'s layout (``root/SUN397/{ClassName.txt,<letter>/<class>/sun_*.jpg}``)
  with the official partition 1 lists ``Training_01.txt`` / ``Testing_01.txt`` (the Partitions archive,
  extracted into ``root/SUN397`` or ``root``), as Ericsson et al.'s ``datasets/sun397.py`` (split ``01``).

ImageNet 1%/10% label subsets: :func:`imagenet_subset_indices` matches the shipped SimCLR
split lists (``lists/imagenet_{1,10}percent.txt``, provenance in ``lists/README.md``) against
``data.files``, and refuses when they disagree: every listed image of the dataset's classes
(``imagenet``: all 1000; ``imagenet100``: its 100) must be there, else a partial copy or a
``train_size`` subset would silently train on a smaller split than the paper's 12,811 / 128,116.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import datasets

from resa_core.data import fashion_mnist
from resa_core.errors import UserError

LISTS = Path(__file__).resolve().parent / "lists"
# Oreshkin et al. 2018 (TADAM), FC100: CIFAR-100 superclass ids of each split (ElementAI/TADAM).
FC100_SUPERCLASSES = {
    "train": (1, 2, 3, 4, 5, 6, 9, 10, 15, 17, 18, 19),
    "val": (8, 11, 13, 16),
    "test": (0, 7, 12, 14),
}


class LabelledImages(torch.utils.data.Dataset):
    """``(PIL RGB image, int label)`` items of ``read(i)`` with all labels known up front."""

    def __init__(
        self, read: Callable[[int], Image.Image], labels: Sequence[int], class_names: Sequence[str],
        files: Sequence[str] | None = None, transform: Callable | None = None, indices: np.ndarray | None = None,
    ):
        self._read, self._all_labels, self._all_files = read, np.asarray(labels, dtype=np.int64), files
        self.class_names = tuple(class_names)
        self.transform = transform
        self.indices = np.arange(len(self._all_labels)) if indices is None else np.asarray(indices, dtype=np.int64)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labels(self) -> np.ndarray:
        return self._all_labels[self.indices]

    @property
    def files(self) -> list[str] | None:
        return None if self._all_files is None else [self._all_files[i] for i in self.indices]

    def subset(self, indices: Sequence[int]) -> LabelledImages:
        """The items at positions ``indices`` of this dataset (same classes, same transform)."""
        return LabelledImages(
            self._read, self._all_labels, self.class_names, self._all_files, self.transform,
            self.indices[np.asarray(indices, dtype=np.int64)],
        )

    def __len__(self) -> int:
        return len(self.indices)

    def open_image(self, position: int) -> contextlib.AbstractContextManager[Image.Image]:
        """The item's image for a reader that decodes it itself, without ``transform``.

        File-backed items: the file opened with ``Image.open`` but not decoded, so a JPEG can
        still be decoded at a reduced size (PIL ``draft``, :mod:`pretrain.data.pil_views`),
        closed when the ``with`` block ends. Other items: their decoded image.
        """
        index = int(self.indices[position])
        if self._all_files is None:
            return contextlib.nullcontext(self._read(index))
        return Image.open(self._all_files[index])

    def __getitem__(self, position: int):
        index = int(self.indices[position])
        image = self._read(index).convert("RGB")
        return (self.transform(image) if self.transform else image), int(self._all_labels[index])


@dataclass(frozen=True)
class CatalogEntry:
    """How to open one named dataset: its splits, expected layout and default folder."""

    name: str
    splits: tuple[str, ...]
    layout: str
    default_dir: str
    open: Callable[[Path, str], LabelledImages]


def _missing(entry: CatalogEntry, root: Path, detail: str = "") -> UserError:
    extra = f" ({detail})" if detail else ""
    return UserError(f"dataset '{entry.name}' not found at {root}{extra}; expected layout: {entry.layout}")


# --- CIFAR family ---------------------------------------------------------------------------------


class _LocalCIFAR10(datasets.CIFAR10):
    """torchvision's CIFAR-10 reader, checking that the files exist instead of their md5 sums."""

    def _check_integrity(self) -> bool:
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        path = Path(self.root) / self.base_folder / self.meta["filename"]
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing")
        with open(path, "rb") as handle:
            self.classes = pickle.load(handle, encoding="latin1")[self.meta["key"]]  # as torchvision reads it
        self.class_to_idx = {name: index for index, name in enumerate(self.classes)}


class _LocalCIFAR100(_LocalCIFAR10, datasets.CIFAR100):
    pass


def _cifar_coarse(root: Path, split: str) -> tuple[list[int], list[str]]:
    """CIFAR-100 superclass labels and names, read from the same pickles torchvision reads."""
    folder = root / datasets.CIFAR100.base_folder
    files = [name for name, _ in (datasets.CIFAR100.train_list if split == "train" else datasets.CIFAR100.test_list)]
    labels: list[int] = []
    for name in files:
        with open(folder / name, "rb") as handle:
            labels += pickle.load(handle, encoding="latin1")["coarse_labels"]  # as torchvision loads them
    with open(folder / "meta", "rb") as handle:
        names = pickle.load(handle, encoding="latin1")["coarse_label_names"]
    return labels, names


def _from_array_dataset(data, labels, names) -> LabelledImages:
    return LabelledImages(lambda i: Image.fromarray(data.data[i]), labels, names)


def _open_cifar(kind: str) -> Callable[[Path, str], LabelledImages]:
    def open_(root: Path, split: str) -> LabelledImages:
        reader = _LocalCIFAR10 if kind == "cifar10" else _LocalCIFAR100
        data = reader(str(root), train=split == "train", download=False)
        if kind == "cifar100_coarse":
            return _from_array_dataset(data, *_cifar_coarse(root, split))
        return _from_array_dataset(data, data.targets, data.classes)

    return open_


def _open_fc100(root: Path, split: str) -> LabelledImages:
    """CIFAR-100 train+test images of the split's superclasses, fine labels renumbered 0..C-1."""
    parts = [_LocalCIFAR100(str(root), train=train, download=False) for train in (True, False)]
    images = np.concatenate([part.data for part in parts])
    fine = np.concatenate([np.asarray(part.targets) for part in parts])
    coarse = np.concatenate([np.asarray(_cifar_coarse(root, split_name)[0]) for split_name in ("train", "test")])
    classes = np.unique(fine[np.isin(coarse, FC100_SUPERCLASSES[split])])
    keep = np.flatnonzero(np.isin(fine, classes))
    relabel = {int(cls): new for new, cls in enumerate(classes)}
    return LabelledImages(
        lambda i: Image.fromarray(images[keep[i]]), [relabel[int(fine[i])] for i in keep],
        [parts[0].classes[cls] for cls in classes],
    )


# --- file-based datasets --------------------------------------------------------------------------


def _from_files(files: Sequence[Path | str], labels: Sequence[int], names: Sequence[str]) -> LabelledImages:
    files = [str(path) for path in files]

    def read(index: int) -> Image.Image:
        with Image.open(files[index]) as image:
            image.load()
            return image

    return LabelledImages(read, labels, names, files)


class _ClassListFolder(datasets.ImageFolder):
    """ImageFolder whose classes are a fixed list (ImageNet-100) instead of every sub-folder."""

    def __init__(self, root: str, classes: Sequence[str]):
        self._fixed = sorted(classes)
        super().__init__(root)

    def find_classes(self, directory):
        missing = [name for name in self._fixed if not (Path(directory) / name).is_dir()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} listed classes missing, e.g. {missing[0]}")
        return list(self._fixed), {name: index for index, name in enumerate(self._fixed)}


def _image_folder(directory: Path, classes: Sequence[str] | None = None) -> LabelledImages:
    folder = datasets.ImageFolder(str(directory)) if classes is None else _ClassListFolder(str(directory), classes)
    return _from_files([path for path, _ in folder.samples], folder.targets, folder.classes)


def read_list(name: str) -> list[str]:
    """Non-empty lines of a shipped list file (``lists/<name>``)."""
    return [line.strip() for line in (LISTS / name).read_text().splitlines() if line.strip()]


def _open_imagenet(subset: str | None) -> Callable[[Path, str], LabelledImages]:
    def open_(root: Path, split: str) -> LabelledImages:
        return _image_folder(root / split, read_list("imagenet100.txt") if subset else None)

    return open_


def _open_imagefolder(root: Path, split: str) -> LabelledImages:
    return _image_folder(root / split)


def _open_plant_disease(root: Path, split: str) -> LabelledImages:
    return _image_folder(root)


def _read_cub_table(path: Path) -> dict[int, str]:
    table = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            key, sep, value = line.strip().partition(" ")
            if not sep or not key.isdigit():
                raise UserError(f"{path}:{number}: expected '<image_id> <value>', got {line!r}")
            table[int(key)] = value.strip()
    return table


def _open_cub(root: Path, split: str) -> LabelledImages:
    """CUB-200-2011 from its official index files; labels ``class_id - 1``, is_training_image 1 = train."""
    base = root / "CUB_200_2011" if (root / "CUB_200_2011").is_dir() else root
    tables = {name: base / f"{name}.txt" for name in ("images", "train_test_split", "image_class_labels")}
    if not all(path.is_file() for path in tables.values()):
        raise FileNotFoundError("index files missing")
    images, is_train, classes = (_read_cub_table(path) for path in tables.values())
    wanted = "1" if split == "train" else "0"
    ids = sorted(image_id for image_id, flag in is_train.items() if flag == wanted)
    class_ids = sorted({int(classes[image_id]) for image_id in classes})
    names = {int(key): value for key, value in _read_cub_table(base / "classes.txt").items()} if (
        base / "classes.txt").is_file() else {}
    return _from_files(
        [base / "images" / images[image_id] for image_id in ids],
        [int(classes[image_id]) - 1 for image_id in ids],
        [names.get(class_id, str(class_id)) for class_id in range(1, max(class_ids) + 1)],
    )


def cub_novel_classes(class_folders: Sequence[str]) -> list[str]:
    """CloserLookFewShot ``write_CUB_filelist.py``: sorted class folders, ``novel`` = index ``i % 4 == 3``."""
    return [name for i, name in enumerate(sorted(class_folders)) if i % 4 == 3]


def _open_cub_novel(root: Path, split: str) -> LabelledImages:
    """All images of the 50 novel classes, from CUB-200-2011's index files or CUB-200's ``images/`` folders."""
    base = root / "CUB_200_2011" if (root / "CUB_200_2011").is_dir() else root
    if (base / "images.txt").is_file():
        files = [base / "images" / path for path in _read_cub_table(base / "images.txt").values()]
    elif (base / "images").is_dir():  # CUB-200 (2010): images/<NNN.Name>/<image>.jpg
        files = sorted(path for path in (base / "images").glob("*/*") if path.is_file() and path.name[0] != ".")
    else:
        raise FileNotFoundError("neither images.txt nor images/<class>/ found")
    if len({path.parent.name for path in files}) != 200:
        raise UserError(f"{base}: CUB's novel split needs all 200 class folders (the split is by sorted index), "
                        f"found {len({path.parent.name for path in files})}")
    novel = cub_novel_classes({path.parent.name for path in files})
    label = {name: index for index, name in enumerate(novel)}
    keep = sorted((path for path in files if path.parent.name in label), key=str)
    return _from_files(keep, [label[path.parent.name] for path in keep], novel)


class _LocalFlowers102(datasets.Flowers102):
    """torchvision's Flowers-102 reader, checking that the files exist instead of their md5 sums."""

    def _check_integrity(self) -> bool:
        return self._images_folder.is_dir() and all(
            (self._base_folder / name).is_file() for name, _ in self._file_dict.values()
        )


def _open_torchvision(kind: str) -> Callable[[Path, str], LabelledImages]:
    def open_(root: Path, split: str) -> LabelledImages:
        if kind == "pets":
            data = datasets.OxfordIIITPet(str(root), split=split, target_types="category", download=False)
            files, names = data._images, data.classes
        elif kind == "food101":
            data = datasets.Food101(str(root), split=split, download=False)
            files, names = data._image_files, data.classes
        elif kind == "aircraft":
            data = datasets.FGVCAircraft(str(root), split=split, annotation_level="variant", download=False)
            files, names = data._image_files, data.classes
        elif kind == "dtd":
            data = datasets.DTD(str(root), split=split, partition=1, download=False)
            files, names = data._image_files, data.classes
        elif kind == "cars":
            data = datasets.StanfordCars(str(root), split=split, download=False)
            files, names = [path for path, _ in data._samples], data.classes
            return _from_files(files, [label for _, label in data._samples], names)
        else:
            data = _LocalFlowers102(str(root), split=split, download=False)
            files, names = data._image_files, [str(index) for index in range(102)]
        return _from_files(files, data._labels, names)

    return open_


# --- VOC2007 (multi-label), Caltech-101, SUN397 ----------------------------------------------------

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
CALTECH101_TRAIN_PER_CLASS = 30  # Ericsson et al.: 30 training images per class, the rest test
CALTECH101_SPLIT_SEED = 0


def multilabel_targets(labels: np.ndarray | torch.Tensor, num_classes: int = len(VOC_CLASSES)) -> np.ndarray:
    """Decode bit-mask labels (``sum 2**class``) into an ``(N, num_classes)`` int64 0/1 matrix."""
    masks = np.asarray(labels, dtype=np.int64).reshape(-1, 1)
    return ((masks >> np.arange(num_classes, dtype=np.int64)) & 1).astype(np.int64)


def _voc_base(root: Path) -> Path:
    for base in (root / "VOCdevkit" / "VOC2007", root / "VOC2007", root):
        if (base / "ImageSets" / "Main").is_dir():
            return base
    raise FileNotFoundError("no VOC2007/ImageSets/Main folder")


def _voc_objects(path: Path) -> set[str]:
    import xml.etree.ElementTree as ElementTree

    try:
        tree = ElementTree.parse(path)
    except ElementTree.ParseError as err:
        raise UserError(f"{path}: malformed annotation XML ({err})") from None
    names = {(node.text or "").strip() for node in tree.getroot().iter("object") for node in node.iter("name")}
    unknown = names - set(VOC_CLASSES)
    if unknown:
        raise UserError(f"{path}: unknown VOC class {sorted(unknown)[0]!r}")
    return names


def _open_voc2007(root: Path, split: str) -> LabelledImages:
    """Image ids of ``ImageSets/Main/<split>.txt``; label = bit mask of the classes with an object."""
    base = _voc_base(root)
    ids = [line.split()[0] for line in (base / "ImageSets" / "Main" / f"{split}.txt").read_text().splitlines()
           if line.strip()]
    masks = []
    for image_id in ids:
        present = _voc_objects(base / "Annotations" / f"{image_id}.xml")
        masks.append(sum(1 << VOC_CLASSES.index(name) for name in present))
    return _from_files([base / "JPEGImages" / f"{image_id}.jpg" for image_id in ids], masks, VOC_CLASSES)


def _open_caltech101(root: Path, split: str) -> LabelledImages:
    if not (root / "caltech101" / "101_ObjectCategories").is_dir():
        raise FileNotFoundError("no caltech101/101_ObjectCategories folder")
    datasets.Caltech101(str(root), download=False)  # torchvision's own layout check
    folder = root / "caltech101" / "101_ObjectCategories"
    classes = sorted(path.name for path in folder.iterdir() if path.is_dir())
    rng = np.random.default_rng(CALTECH101_SPLIT_SEED)
    files, labels = [], []
    for label, name in enumerate(classes):
        images = sorted(str(path) for path in (folder / name).glob("*.jpg"))
        train = set(rng.permutation(len(images))[:CALTECH101_TRAIN_PER_CLASS].tolist())
        chosen = [path for i, path in enumerate(images) if (i in train) == (split == "train")]
        files += chosen
        labels += [label] * len(chosen)
    return _from_files(files, labels, classes)


def _open_sun397(root: Path, split: str) -> LabelledImages:
    if not (root / "SUN397" / "ClassName.txt").is_file():
        raise FileNotFoundError("no SUN397/ClassName.txt")
    data = datasets.SUN397(str(root), download=False)
    name = {"train": "Training_01.txt", "test": "Testing_01.txt"}[split]
    listed = [root / "SUN397" / name, root / name]
    path = next((candidate for candidate in listed if candidate.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"partition list {name} missing")
    wanted = {line.strip() for line in path.read_text().splitlines() if line.strip()}
    keep = [i for i, file in enumerate(data._image_files)
            if "/" + file.relative_to(data._data_dir).as_posix() in wanted]
    return _from_files([data._image_files[i] for i in keep], [data._labels[i] for i in keep], data.classes)


def _open_fashion_mnist(root: Path | None, split: str) -> LabelledImages:
    data = fashion_mnist.load_split(split, root)
    return LabelledImages(lambda i: Image.fromarray(data.images[i]), data.labels, fashion_mnist.CLASS_NAMES)


_CIFAR10 = "<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} (CIFAR-10 python version)"
_CIFAR100 = "<root>/cifar-100-python/{train,test,meta} (CIFAR-100 python version)"
CATALOG: dict[str, CatalogEntry] = {
    entry.name: entry for entry in (
        CatalogEntry("cifar10", ("train", "test"), _CIFAR10, "cifar10", _open_cifar("cifar10")),
        CatalogEntry("cifar100", ("train", "test"), _CIFAR100, "cifar100", _open_cifar("cifar100")),
        CatalogEntry("cifar100_coarse", ("train", "test"), _CIFAR100, "cifar100", _open_cifar("cifar100_coarse")),
        CatalogEntry("fc100", ("train", "val", "test"), _CIFAR100, "cifar100", _open_fc100),
        CatalogEntry("imagenet", ("train", "val"), "<root>/{train,val}/<wnid>/<image>.JPEG", "imagenet",
                     _open_imagenet(None)),
        CatalogEntry("imagenet100", ("train", "val"),
                     "<root>/{train,val}/<wnid>/<image>.JPEG with the 100 wnids of lists/imagenet100.txt",
                     "imagenet", _open_imagenet("imagenet100")),
        CatalogEntry("imagefolder", (), "<root>/<split>/<class>/<image>", "imagefolder", _open_imagefolder),
        CatalogEntry("plant_disease", ("test",), "<root>/<class>/<image>", "plant_disease", _open_plant_disease),
        CatalogEntry("cub200_novel", ("test",),
                     "<root>[/CUB_200_2011]/{images.txt,images/} (CUB-200-2011) or <root>/images/<class>/ (CUB-200)",
                     "cub200", _open_cub_novel),
        CatalogEntry("cub200", ("train", "test"),
                     "<root>[/CUB_200_2011]/{images.txt,train_test_split.txt,image_class_labels.txt,images/}",
                     "cub200", _open_cub),
        CatalogEntry("pets", ("trainval", "test"),
                     "<root>/oxford-iiit-pet/{images/,annotations/{trainval,test}.txt}", "pets",
                     _open_torchvision("pets")),
        CatalogEntry("food101", ("train", "test"), "<root>/food-101/{images/<class>/,meta/{train,test}.json}",
                     "food101", _open_torchvision("food101")),
        CatalogEntry("flowers102", ("train", "val", "test"),
                     "<root>/flowers-102/{jpg/image_NNNNN.jpg,imagelabels.mat,setid.mat}", "flowers102",
                     _open_torchvision("flowers102")),
        CatalogEntry("aircraft", ("train", "val", "test"),
                     "<root>/fgvc-aircraft-2013b/data/{images/,variants.txt,images_variant_<split>.txt}", "aircraft",
                     _open_torchvision("aircraft")),
        CatalogEntry("dtd", ("train", "val", "test"), "<root>/dtd/dtd/{images/<class>/,labels/<split>1.txt}", "dtd",
                     _open_torchvision("dtd")),
        CatalogEntry("cars", ("train", "test"),
                     "<root>/stanford_cars/{cars_train/,cars_test/,devkit/,cars_test_annos_withlabels.mat}", "cars",
                     _open_torchvision("cars")),
        CatalogEntry("voc2007", ("train", "val", "trainval", "test"),
                     "<root>[/VOCdevkit]/VOC2007/{JPEGImages/<id>.jpg,Annotations/<id>.xml,"
                     "ImageSets/Main/{train,val,trainval,test}.txt}", "voc2007", _open_voc2007),
        CatalogEntry("caltech101", ("train", "test"), "<root>/caltech101/101_ObjectCategories/<class>/image_NNNN.jpg",
                     "caltech101", _open_caltech101),
        CatalogEntry("sun397", ("train", "test"),
                     "<root>/SUN397/{ClassName.txt,<letter>/<class>/sun_*.jpg,Training_01.txt,Testing_01.txt}",
                     "sun397", _open_sun397),
        CatalogEntry("fashion_mnist", ("train", "test"), "idx files, see resa_core.data.fashion_mnist",
                     "", _open_fashion_mnist),
    )
}


def catalog_entry(name: str) -> CatalogEntry:
    if name not in CATALOG:
        raise UserError(f"unknown dataset '{name}'; known datasets: {', '.join(sorted(CATALOG))}")
    return CATALOG[name]


def default_root(entry: CatalogEntry) -> Path:
    return Path(os.environ.get("RESA_DATA", "data")) / entry.default_dir


def open_dataset(
    name: str, split: str, root: str | os.PathLike | None = None, transform: Callable | None = None
) -> LabelledImages:
    """Open split ``split`` of dataset ``name`` under ``root``; see the module docstring."""
    entry = catalog_entry(name)
    if entry.splits and split not in entry.splits:
        raise UserError(f"dataset '{name}': unknown split '{split}'; expected one of {', '.join(entry.splits)}")
    if name == "fashion_mnist":  # keeps its own search path (env var, Debian package, data/)
        data = _open_fashion_mnist(root, split)
    else:
        path = Path(root) if root else default_root(entry)
        if not path.is_dir():
            raise _missing(entry, path, "no such directory")
        try:
            data = entry.open(path, split)
        except (FileNotFoundError, RuntimeError, KeyError, OSError) as err:
            raise _missing(entry, path, " ".join(str(err).split())[:200]) from None
        if len(data) == 0:
            raise _missing(entry, path, f"split '{split}' has no images")
    data.transform = transform
    return data


def imagenet_subset_indices(data: LabelledImages, percent: int, name: str = "imagenet") -> np.ndarray:
    """Positions in ``data`` (ImageNet train) of the SimCLR ``percent``% (1 or 10) split list.

    ``name`` (``imagenet`` / ``imagenet100``) fixes which listed images must all be present: the
    whole list, or its images of the 100 classes. A missing one is an error naming the count.
    """
    if percent not in (1, 10):
        raise UserError(f"ImageNet label subset must be 1 or 10 percent, got {percent}")
    files = data.files  # a property that builds the list: read it once
    if files is None:
        raise UserError("ImageNet label subsets need a file-based dataset (imagenet / imagenet100)")
    listed = read_list(f"imagenet_{percent}percent.txt")
    if name == "imagenet100":
        classes = set(read_list("imagenet100.txt"))
        listed = [file for file in listed if file.split("_")[0] in classes]  # file names are <wnid>_<n>.JPEG
    wanted = set(listed)
    names = [os.path.basename(path) for path in files]
    positions = np.array([i for i, file in enumerate(names) if file in wanted], dtype=np.int64)
    missing = sorted(wanted.difference(names))
    if missing:
        raise UserError(f"{len(missing)} of the {len(wanted)} images of the {name} {percent}% list are not in this "
                        f"train split (e.g. {missing[0]}): a partial copy, or train_size set, would shrink the "
                        "split; use the complete train split with train_size=null")
    return positions
