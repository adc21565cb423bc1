"""Turning ``--weights`` into a frozen encoder and the provenance the record stores.

Three kinds of weights:

* a file: read by :func:`converters.read_backbone` (its default encoder choice) into the
  canonical state_dict, loaded strictly into ``pretrain.models.build_backbone(arch)``;
* ``random:<arch>``: a registered arch initialised from ``torch.manual_seed(seed)``;
* ``pixels``: the flattened normalised evaluation image (one channel for grey datasets).

The record's ``name`` (the table row label) is the file's method (its stem when the file does
not name one), ``random`` or ``pixels``, unless ``--name`` says otherwise.
For the two pseudo-backbones ``sha256`` is the hash of the spec string, with the seed for
``random`` (``"random:<arch>:seed<S>"``), and ``path`` is the spec (docs/contracts.md §3).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pretrain.models import arch_spec, build_backbone
from resa_core.errors import UserError

PIXELS = "pixels"
RANDOM_PREFIX = "random:"


@dataclass
class ResolvedBackbone:
    """An encoder ready for feature extraction, plus the ``backbone`` block of the record."""

    encoder: nn.Module
    name: str
    path: str
    sha256: str
    method: str | None
    arch: str | None
    pretrain_epochs: int | None

    def provenance(self) -> dict:
        return {
            "name": self.name, "path": self.path, "sha256": self.sha256, "method": self.method,
            "arch": self.arch, "pretrain_epochs": self.pretrain_epochs,
        }


class PixelEncoder(nn.Module):
    """Raw-pixel baseline: ``(B, C, H, W)`` -> ``(B, H*W)`` for grey images, ``(B, C*H*W)`` else.

    Grey images arrive replicated to three identical channels (resa_core.data.tensors), so
    one channel carries all the information.
    """

    def __init__(self, grey: bool):
        super().__init__()
        self.grey = grey

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images[:, :1] if self.grey else images).flatten(1)


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def resolve_backbone(weights: str, seed: int, grey: bool, name: str | None = None) -> ResolvedBackbone:
    """Build the frozen encoder named by ``weights`` (file path, ``random:<arch>`` or ``pixels``)."""
    if weights == PIXELS:
        resolved = ResolvedBackbone(
            PixelEncoder(grey), PIXELS, PIXELS, _sha256_text(PIXELS), None, None, None
        )
    elif weights.startswith(RANDOM_PREFIX):
        resolved = _random_backbone(weights[len(RANDOM_PREFIX):], seed)
    else:
        resolved = _file_backbone(weights)
    if name:
        resolved.name = name
    resolved.encoder.eval().requires_grad_(False)
    return resolved


def _random_backbone(arch: str, seed: int) -> ResolvedBackbone:
    arch_spec(arch)  # unknown arch -> UserError listing the registered ones
    torch.manual_seed(seed)
    spec = f"{RANDOM_PREFIX}{arch}"
    return ResolvedBackbone(
        build_backbone(arch), "random", spec, _sha256_text(f"{spec}:seed{seed}"), None, arch, None
    )


def _file_backbone(weights: str) -> ResolvedBackbone:
    if not Path(weights).is_file():
        raise UserError(
            f"weights '{weights}': no such file; expected a checkpoint/backbone file, "
            f"'{RANDOM_PREFIX}<arch>' or '{PIXELS}'"
        )
    try:
        from converters import read_backbone
    except ImportError as err:
        raise UserError(
            f"weights '{weights}': reading files needs converters.read_backbone ({err})"
        ) from None
    backbone = read_backbone(weights)
    encoder = build_backbone(backbone.arch)
    missing, unexpected = _key_mismatch(encoder, backbone.state_dict)
    if missing or unexpected:
        raise UserError(
            f"weights '{weights}': state_dict does not fit arch '{backbone.arch}' "
            f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})"
        )
    try:
        encoder.load_state_dict(backbone.state_dict, strict=True)
    except RuntimeError as err:  # right keys, wrong shapes
        raise UserError(f"weights '{weights}': {str(err).splitlines()[-1].strip()}") from None
    return ResolvedBackbone(
        encoder, backbone.method or Path(weights).stem, str(backbone.source_path), backbone.source_sha256,
        backbone.method, backbone.arch, backbone.pretrain_epochs,
    )


def _key_mismatch(encoder: nn.Module, state_dict: dict) -> tuple[list[str], list[str]]:
    expected, given = set(encoder.state_dict()), set(state_dict)
    return sorted(expected - given), sorted(given - expected)
