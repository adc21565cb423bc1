"""Checkpoint conversion: any supported file -> canonical backbone -> Detectron2 / MMSeg / torchvision / timm.

Public API (downstream and slurm use only these names)::

    read_backbone(path, source="auto", encoder=None) -> Backbone
    convert(src, out, to, source="auto", encoder=None, force=False, verify=False) -> Path
    write_backbone(backbone, out, to, force=False) -> Path
    verify_written(backbone, out, to) -> VerifyReport
    list_sources(), list_targets()

Formats are registries (``converters.sources``, ``converters.targets``): a new format is one
module (prefix-based SSL layouts are a table in ``converters.sources.layout``). Untrusted files
are opened by ``converters.safe_load`` only; ``converters.engines`` loads written files into the
real timm / Detectron2 / MMSegmentation models for ``--verify``. User docs: docs/converters.md.
"""

from converters.backbone import ENCODER_CHOICES, Backbone
from converters.coverage import CoverageReport
from converters.reading import read_backbone
from converters.sources import list_sources
from converters.targets import list_targets
from converters.verify import VerifyReport, verify_written
from converters.writing import Conversion, convert, convert_file, write_backbone

__all__ = [
    "ENCODER_CHOICES",
    "Backbone",
    "Conversion",
    "CoverageReport",
    "VerifyReport",
    "convert",
    "convert_file",
    "list_sources",
    "list_targets",
    "read_backbone",
    "verify_written",
    "write_backbone",
]
