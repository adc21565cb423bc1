"""``python -m downstream random-backbone --arch ARCH [--seed S] -o FILE``: a randomly initialised backbone file.

The fine-tuning engines (Detectron2, MMSegmentation) take a backbone *file*; this writes the
exact encoder that ``--weights random:<arch>`` builds for the frozen-feature tasks
(:func:`downstream.backbones._random_backbone`: ``torch.manual_seed(seed)`` then
``pretrain.models.build_backbone(arch)``), as a plain torchvision-style state_dict, so the
"random" row of a table is one initialisation across k-NN, linear, detection and segmentation.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from pretrain.models import arch_spec, build_backbone
from resa_core.atomic import torch_save_atomic


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m downstream random-backbone", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, help="registered arch (pretrain.models), e.g. resnet18")
    parser.add_argument("--seed", type=int, default=0, help="torch.manual_seed before building (as random:<arch>)")
    parser.add_argument("-o", "--out", required=True, type=Path, help="output .pth file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(list(argv or []))
    arch_spec(args.arch)  # unknown arch -> UserError listing the registered ones
    torch.manual_seed(args.seed)
    state = {key: value.detach().clone() for key, value in build_backbone(args.arch).state_dict().items()}
    torch_save_atomic(args.out, state)
    print(args.out)
    return 0
