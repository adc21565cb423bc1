"""``read_backbone``: any supported file -> canonical :class:`Backbone`, strictly, with provenance."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from converters.arch_inference import infer_arch
from converters.backbone import ENCODER_CHOICES, ENCODER_ROLE, Backbone
from converters.coverage import match_to_arch
from converters.safe_load import load_checkpoint_file
from converters.sources import detect_source, get_source
from resa_core.atomic import sha256_file
from resa_core.errors import UserError

AUTO = "auto"


def read_backbone(path: str | Path, source: str = AUTO, encoder: str | None = None) -> Backbone:
    """Read ``path`` (format ``source``, or detected from its keys) into a canonical Backbone.

    ``encoder`` picks ``"momentum"`` or ``"online"`` where the file holds both (default: momentum
    when present); ``"teacher"``/``"student"`` are DINO's names for the same two roles.
    Raises UserError unless every encoder tensor maps onto the arch and every
    backbone key is filled; ``Backbone.coverage`` reports what was mapped and dropped.
    """
    path = Path(path)
    if encoder not in (*ENCODER_CHOICES, None):
        raise UserError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODER_CHOICES)}")
    obj = load_checkpoint_file(path)
    reader = detect_source(obj, str(path)) if source == AUTO else get_source(source)
    weights = reader.read(path, obj, encoder)
    if encoder is not None and (weights.encoder is None or ENCODER_ROLE[weights.encoder] != ENCODER_ROLE[encoder]):
        raise UserError(
            f"{path}: asked for the {encoder} encoder, but this {reader.name} file holds "
            f"{'the ' + weights.encoder if weights.encoder else 'a single unnamed'} encoder"
        )
    arch = weights.arch
    if arch is None:
        inferred = infer_arch(weights.tensors, str(path))
        arch = reader.arch_variants.get(inferred, inferred)
    state_dict, coverage = match_to_arch(weights.tensors, weights.origin, arch)
    coverage = dataclasses.replace(coverage, not_taken=weights.not_taken)
    coverage.raise_if_incomplete(str(path))
    return Backbone(
        state_dict=state_dict,
        arch=arch,
        source_format=reader.name,
        source_path=str(path),
        source_sha256=sha256_file(path),
        encoder=weights.encoder,
        method=weights.method,
        pretrain_epochs=weights.pretrain_epochs,
        coverage=coverage,
    )
