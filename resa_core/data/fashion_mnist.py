"""Real Fashion-MNIST from its idx files, and fixed stratified subsets of it.

Where the files come from, in order: an explicit root, ``$FASHION_MNIST_ROOT``, the Debian
package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``), and torchvision's
download folder ``<data_dir>/FashionMNIST/raw``. ``scripts/get_data.sh`` fetches it one of
those ways. The idx layout (magic, dims, then bytes; images at offset 16, labels at offset 8)
is the one described by the dataset's authors (zalandoresearch/fashion-mnist README).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resa_core.errors import UserError

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
NUM_CLASSES = 10
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}
HOW_TO_GET = (
    "install it with 'apt-get install dataset-fashion-mnist' (files in /usr/share/datasets/fashion-mnist) "
    "or 'python -c \"import torchvision; torchvision.datasets.FashionMNIST(\\\"data\\\", download=True)\"' "
    "and pass data_root=data/FashionMNIST/raw (scripts/get_data.sh tries both)"
)


@dataclass(frozen=True)
class ImageArray:
    """Images as uint8 ``(N, H, W)`` and integer labels ``(N,)``, with their indices in the split."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray


def candidate_roots(root: str | os.PathLike | None) -> list[Path]:
    if root:
        return [Path(root)]
    roots = [Path(os.environ["FASHION_MNIST_ROOT"])] if os.environ.get("FASHION_MNIST_ROOT") else []
    return roots + [DEBIAN_ROOT, Path("data/FashionMNIST/raw")]


def _find(root_dirs: list[Path], stem: str) -> Path | None:
    for root in root_dirs:
        for name in (stem + ".gz", stem):
            if (root / name).is_file():
                return root / name
    return None


def _read_idx(path: Path, offset: int, expected: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as err:
        raise UserError(f"{path}: cannot read Fashion-MNIST idx file ({err})") from None
    data = np.frombuffer(raw, dtype=np.uint8, offset=offset)
    if offset == 16:
        if data.size != expected * 28 * 28:
            raise UserError(f"{path}: expected {expected} images of 28x28, file is truncated or wrong")
        return data.reshape(expected, 28, 28)
    if data.size != expected:
        raise UserError(f"{path}: expected {expected} labels, found {data.size}")
    return data.astype(np.int64)


def load_split(split: str, root: str | os.PathLike | None = None) -> ImageArray:
    """Load the full ``train`` (60k) or ``test`` (10k) split."""
    if split not in _FILES:
        raise UserError(f"Fashion-MNIST split '{split}' unknown; expected one of {sorted(_FILES)}")
    image_stem, label_stem, count = _FILES[split]
    roots = candidate_roots(root)
    image_file, label_file = _find(roots, image_stem), _find(roots, label_stem)
    if image_file is None or label_file is None:
        looked = ", ".join(str(r) for r in roots)
        raise UserError(f"Fashion-MNIST {split} files not found (looked in: {looked}); {HOW_TO_GET}")
    images = _read_idx(image_file, 16, count)
    labels = _read_idx(label_file, 8, count)
    return ImageArray(images, labels, np.arange(count))


def stratified_subset(data: ImageArray, size: int | None, seed: int) -> ImageArray:
    """A fixed class-balanced subset of ``size`` samples (``None`` or ``0``: all), sorted by index."""
    if not size or size >= len(data.labels):
        return data
    classes = np.unique(data.labels)
    if size < len(classes):
        raise UserError(f"subset size {size} is smaller than the number of classes ({len(classes)})")
    rng = np.random.default_rng(seed)
    per_class = np.full(len(classes), size // len(classes))
    per_class[: size % len(classes)] += 1
    chosen = [
        rng.choice(np.flatnonzero(data.labels == cls), count, replace=False)
        for cls, count in zip(classes, per_class, strict=True)
    ]
    keep = np.sort(np.concatenate(chosen))
    return ImageArray(data.images[keep], data.labels[keep], data.indices[keep])


def load_subset(split: str, size: int | None, seed: int, root: str | os.PathLike | None = None) -> ImageArray:
    return stratified_subset(load_split(split, root), size, seed)
