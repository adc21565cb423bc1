"""``--weights`` -> the backbone of a Detectron2 model, never letting Detectron2 open the user's file.

The file is read by ``converters.read_backbone`` (restricted unpickler for ``.pkl``,
``weights_only`` for ``.pth``), which refuses weights that do not cover the whole ResNet and
says why (the converter's coverage report). The canonical backbone is written as a Detectron2
``.pkl`` in the run's output directory by ``converters.write_backbone`` (MoCo's
convert-pretrain-to-detectron2 names), read back with the restricted unpickler, and that dict
is handed to Detectron2's checkpointer (``matching_heuristics`` aligns the names). Every ResNet
tensor of the model must be filled: a missing one is an error, not a warning. Names are not
enough (Detectron2's heuristics match by suffix and shape), so each loaded tensor is also
compared with the value the file holds under the name MoCo's converter gives it (the model's
name less its ``backbone.bottom_up.`` / ``backbone.`` / ``roi_heads.`` prefix), as the
segmentation launcher does after mmengine's init (``downstream.segmentation.backbone_check``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from detectron2.checkpoint import DetectionCheckpointer

from converters import Backbone, read_backbone, write_backbone
from converters.safe_load import load_pickle
from resa_core.atomic import sha256_file
from resa_core.errors import UserError

log = logging.getLogger("downstream.detection")

SCRATCH = "scratch"
DETECTRON2_ARCHS = ("resnet50", "resnet18")  # resnet18: the demo's Fashion-MNIST scenes task
# Where the ResNet lives in each Detectron2 model: FPN wraps it as bottom_up; C4 splits it, res5
# moving into the ROI head (whose extra MoCo norm is new, not pretrained).
RESNET_PREFIXES = ("backbone.bottom_up.", "backbone.res", "backbone.stem.", "roi_heads.res5.")
NOT_PRETRAINED = ("roi_heads.res5.norm.",)
# Model name -> name in the Detectron2 .pkl (moco detection/convert-pretrain-to-detectron2.py: stem.*, resN.*).
MODEL_PREFIXES = ("backbone.bottom_up.", "backbone.", "roi_heads.")


@dataclass(frozen=True)
class LoadReport:
    """What the checkpointer filled: ResNet tensors of the model, and those equal to the file's values."""

    resnet_keys: int
    equal_values: int

    def as_dict(self) -> dict:
        return {"resnet_keys": self.resnet_keys, "equal_values": self.equal_values}


def read_weights(spec: str) -> Backbone | None:
    """``scratch`` -> None; a file -> its canonical backbone (UserError unless it is a full ResNet-50)."""
    if spec == SCRATCH:
        return None
    if not Path(spec).is_file():
        raise UserError(f"weights '{spec}': no such file; expected a checkpoint/backbone file or '{SCRATCH}'")
    backbone = read_backbone(spec)
    if backbone.arch not in DETECTRON2_ARCHS:
        raise UserError(f"weights '{spec}': arch {backbone.arch}; the detection configs need {DETECTRON2_ARCHS}")
    return backbone


def provenance(spec: str, backbone: Backbone | None, name: str | None) -> dict:
    """The record's ``backbone`` block (docs/contracts.md §3); scratch hashes the string ``scratch``."""
    if backbone is None:
        import hashlib

        return {"name": name or SCRATCH, "path": SCRATCH, "sha256": hashlib.sha256(SCRATCH.encode()).hexdigest(),
                "method": None, "arch": "resnet50", "pretrain_epochs": None}
    return {"name": name or backbone.method or Path(spec).stem, "path": backbone.source_path,
            "sha256": backbone.source_sha256, "method": backbone.method, "arch": backbone.arch,
            "pretrain_epochs": backbone.pretrain_epochs}


def resnet_keys(checkpointer: DetectionCheckpointer) -> list[str]:
    return [key for key in checkpointer.model.state_dict()
            if key.startswith(RESNET_PREFIXES) and not key.startswith(NOT_PRETRAINED)]


def file_key(model_key: str) -> str:
    """The name a ResNet tensor of the model has in the Detectron2 .pkl."""
    prefix = next(prefix for prefix in MODEL_PREFIXES if model_key.startswith(prefix))
    return model_key[len(prefix):]


def differing_values(model: torch.nn.Module, keys: list[str], source: dict) -> list[str]:
    """The ResNet tensors of ``model`` that do not hold the value ``source`` has under their file name."""
    state = model.state_dict()
    differ = []
    for key in keys:
        expected = source.get(file_key(key))
        value = state[key].detach().cpu()
        if expected is None or not torch.equal(value, torch.as_tensor(expected).to(value.dtype)):
            differ.append(key)
    return differ


def load_into(checkpointer: DetectionCheckpointer, backbone: Backbone, out_dir: str | Path) -> LoadReport:
    """Fill the model's ResNet from ``backbone``; UserError if any ResNet tensor is missing or holds another value."""
    pkl = write_backbone(backbone, Path(out_dir) / "backbone_detectron2.pkl", "detectron2", force=True)
    checkpoint = load_pickle(pkl)
    source = dict(checkpoint["model"])  # _load_model replaces checkpoint["model"] by the aligned dict
    log.info("loading %s (sha256 %s) into the model", pkl, sha256_file(pkl)[:12])
    incompatible = checkpointer._load_model(checkpoint)  # Detectron2's load() minus opening a file
    keys = resnet_keys(checkpointer)
    missing = [key for key in incompatible.missing_keys if key in set(keys)]
    if missing:
        raise UserError(f"{backbone.source_path}: {len(missing)} of {len(keys)} ResNet tensors of the model not "
                        f"filled: {', '.join(missing[:5])}")
    differ = differing_values(checkpointer.model, keys, source)
    if differ:
        raise UserError(f"{backbone.source_path}: {len(differ)} of {len(keys)} ResNet tensors of the model do not "
                        f"hold the file's values: {', '.join(differ[:5])}")
    log.info("backbone: %d/%d ResNet tensors loaded with the file's values", len(keys), len(keys))
    return LoadReport(len(keys), len(keys) - len(differ))
