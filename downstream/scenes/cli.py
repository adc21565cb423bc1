"""``python -m downstream make-scenes --out DIR [--train N] [--val N] [--size PX] [--seed S]``.

Writes the Fashion-MNIST scenes set (:mod:`resa_core.data.fmnist_scenes`) under ``DIR``, where the
detection tasks look for it as ``$DETECTRON2_DATASETS/fmnist_scenes`` and the segmentation tasks
as ``<--data-root>/fmnist_scenes``. The same arguments write byte-identical files.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from resa_core.data.fmnist_scenes import make_scenes


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m downstream make-scenes", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (e.g. datasets/fmnist_scenes)")
    parser.add_argument("--train", type=int, default=400, help="training scenes (objects from the train split)")
    parser.add_argument("--val", type=int, default=100, help="evaluation scenes (objects from the test split)")
    parser.add_argument("--size", type=int, default=96, help="canvas side in pixels (objects: size/4 .. size/2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fmnist-root", type=Path, help="Fashion-MNIST idx folder (default: its usual places)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(list(argv or []))
    out = make_scenes(args.out, args.train, args.val, args.size, args.seed, args.fmnist_root)
    print(out)
    return 0
