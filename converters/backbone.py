"""The canonical backbone (contracts.md section 2): what every reader returns and every writer takes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from converters.coverage import CoverageReport

ENCODER_CHOICES = ("momentum", "online", "teacher", "student")
# DINO calls its EMA network the teacher and its trained network the student: same roles.
ENCODER_ROLE = {"momentum": "momentum", "online": "online", "teacher": "momentum", "student": "online"}


@dataclass(frozen=True, eq=False)  # eq on dicts of tensors is ambiguous; compare state_dicts explicitly
class Backbone:
    """A backbone state_dict in canonical naming, with where it came from.

    ``state_dict`` is flat, torchvision names for ResNets (no ``fc``), ordered as
    ``build_backbone(arch).state_dict()``. ``source_*`` describe the file it was read from;
    ``encoder`` is which encoder of that file was taken, in the file's own terms (``"momentum"``,
    ``"online"``, DINO's ``"teacher"``/``"student"``, or None when the file holds a single unnamed
    one); ``method`` and ``pretrain_epochs`` are None when the
    file does not say.
    """

    state_dict: dict[str, torch.Tensor]
    arch: str
    source_format: str
    source_path: str
    source_sha256: str
    encoder: str | None = None
    method: str | None = None
    pretrain_epochs: int | None = None
    coverage: CoverageReport | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        """One line naming the weights, e.g. for Detectron2's ``__author__`` field."""
        method = self.method or "unknown method"
        epochs = f", {self.pretrain_epochs} epochs" if self.pretrain_epochs is not None else ""
        encoder = f", {self.encoder} encoder" if self.encoder else ""
        return (
            f"resa-bench converters: {method} {self.arch}{epochs}{encoder} "
            f"from {self.source_format} file {self.source_path} (sha256 {self.source_sha256[:12]})"
        )
