"""Which registered arch a bare state_dict belongs to, from its key names and shapes alone.

Used when a file carries no arch (a plain torchvision state_dict without a sidecar). Each
registered arch is scored by how far its backbone keys are from the file's (keys absent on
either side, or present with another shape); the closest arch wins. ``resnet18`` and
``resnet18_cifar`` differ only in ``conv1.weight`` (7x7 vs 3x3), which this tells apart; a file
with one key missing still resolves to its arch, so the coverage report can name that key.

Some archs differ from another only where no weight shows it (:data:`SHAPE_TWINS`: MoCo v3's
12-head ViT-S/16, solo-learn's ``padding=2`` CIFAR stem). Shapes cannot tell them apart, so
inference never returns them: the source format that knows it names them (``Source.arch_variants``),
or a sidecar ``{"arch": ...}`` does.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from converters.coverage import expected_shapes, is_head
from pretrain.models import list_archs
from resa_core.errors import UserError

# arch -> the arch with the same keys and shapes that inference returns instead.
SHAPE_TWINS = {"vit_small_patch16_12h": "vit_small_patch16", "resnet18_cifar_pad2": "resnet18_cifar"}


def _agreeing_keys(shapes: Mapping[str, tuple[int, ...]], provided: Mapping[str, tuple[int, ...]]) -> int:
    return sum(1 for key, shape in provided.items() if shapes.get(key) == shape)


def infer_arch(tensors: Mapping[str, torch.Tensor], where: str) -> str:
    """The registered arch closest to ``tensors`` (canonical names); UserError when none or a tie."""
    provided = {key: tuple(value.shape) for key, value in tensors.items() if not is_head(key)}
    archs = [arch for arch in list_archs() if arch not in SHAPE_TWINS]
    agree = {arch: _agreeing_keys(expected_shapes(arch), provided) for arch in archs}
    if max(agree.values()) == 0:
        raise UserError(
            f"{where}: no registered arch has these keys (registered: {', '.join(archs)}); "
            "is this a backbone state_dict?"
        )
    # Keys the arch lacks or the file lacks; an arch that merely contains the file's keys
    # (resnet34 vs a resnet18 file) is farther than the arch that matches them exactly.
    distance = {arch: len(expected_shapes(arch)) + len(provided) - 2 * agree[arch] for arch in agree}
    best = min(distance.values())
    winners = [arch for arch in distance if distance[arch] == best]
    if len(winners) > 1:
        raise UserError(
            f"{where}: keys fit several archs equally ({', '.join(winners)}); "
            f'name it in a sidecar {where}.json: {{"arch": "..."}}'
        )
    return winners[0]
