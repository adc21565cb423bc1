"""Strict matching of a file's tensors against a registered arch, and the report that explains it.

A conversion is all-or-nothing: every tensor of the source encoder must land on a key of
``build_backbone(arch).state_dict()`` with the same shape, and every such key must be filled.
Only heads are dropped, by name (``fc``, ``head``, ``projector``, ``predictor``, ``classifier``),
and the report lists them, so a user sees exactly what was left behind. The one key filled without
a tensor is BatchNorm's ``num_batches_tracked`` in files that predate it, as ``load_state_dict`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import torch

from pretrain.models import build_backbone
from resa_core.errors import UserError

# SwAV / DeepCluster-v2 name theirs projection_head and prototypes (facebookresearch/swav src/resnet50.py).
HEAD_NAMES = ("fc", "head", "projector", "predictor", "classifier", "projection_head", "prototypes")
_LIST_LIMIT = 10


@cache
def expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the arch's backbone state_dict, in model order (built on the meta device: free)."""
    with torch.device("meta"):
        model = build_backbone(arch)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def is_head(canonical_key: str) -> bool:
    return canonical_key.split(".", 1)[0] in HEAD_NAMES


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    return shown + (f", ... ({len(items) - _LIST_LIMIT} more)" if len(items) > _LIST_LIMIT else "")


@dataclass(frozen=True)
class CoverageReport:
    """How a file's tensors (named as in the file) fill the arch's backbone keys."""

    arch: str
    filled: int  # backbone keys filled with a tensor of the right shape (defaulted ones included)
    expected: int  # backbone keys of the arch
    dropped: tuple[str, ...] = ()  # head tensors, dropped by name
    unmapped: tuple[str, ...] = ()  # file tensors with no backbone key to go to
    missing: tuple[str, ...] = ()  # backbone keys no file tensor filled
    mismatched: tuple[str, ...] = ()  # "key: file shape vs arch shape"
    not_taken: tuple[str, ...] = ()  # other parts of the file (other encoder, heads), by group
    defaulted: tuple[str, ...] = ()  # keys the file lacks, filled as load_state_dict would (num_batches_tracked)

    @property
    def complete(self) -> bool:
        return not (self.unmapped or self.missing or self.mismatched) and self.filled == self.expected

    def summary(self) -> str:
        parts = [f"mapped {self.filled - len(self.defaulted)}/{self.expected} tensors of {self.arch}"]
        parts.append(f"dropped: {_listed(list(self.dropped))}" if self.dropped else "dropped: none")
        for label, items in (
            ("unmapped", self.unmapped),
            ("missing", self.missing),
            ("shape mismatch", self.mismatched),
        ):
            if items:
                parts.append(f"{label}: {_listed(list(items))}")
        if self.defaulted:
            parts.append(f"filled with 0 (a pre-0.4.1 file without them): {len(self.defaulted)} num_batches_tracked")
        if self.not_taken:
            parts.append(f"not this encoder: {_listed(list(self.not_taken))}")
        return ", ".join(parts)

    def raise_if_incomplete(self, where: str) -> None:
        if not self.complete:
            raise UserError(f"{where}: does not fit {self.arch}: {self.summary()}")


def _fill_num_batches_tracked(
    state_dict: dict[str, torch.Tensor], missing: list[str], shapes: Mapping[str, tuple[int, ...]]
) -> list[str]:
    """Fill BatchNorm's ``num_batches_tracked`` when the file has none at all; returns the keys filled.

    The buffer appeared in PyTorch 0.4.1, so older files (and files saved from such models) lack
    it, and ``load_state_dict(strict=True)`` accepts them: ``_NormBase._load_from_state_dict``
    (torch/nn/modules/batchnorm.py) fills a missing one with 0 for state_dicts of version < 2.
    We fill the same 0. A file that has some of them but not all is not such a file: left missing.
    """
    counters = [key for key in shapes if key.endswith(".num_batches_tracked")]
    if not counters or any(key in state_dict for key in counters) or not set(counters) <= set(missing):
        return []
    for key in counters:
        state_dict[key] = torch.tensor(0, dtype=torch.long)
    return counters


def match_to_arch(
    tensors: Mapping[str, torch.Tensor], origin: Mapping[str, str], arch: str
) -> tuple[dict[str, torch.Tensor], CoverageReport]:
    """Order ``tensors`` (canonical name -> tensor) as the arch's state_dict, and report coverage.

    ``origin`` maps each canonical name back to its name in the file, for the report.
    """
    shapes = expected_shapes(arch)
    state_dict: dict[str, torch.Tensor] = {}
    dropped, unmapped, mismatched = [], [], []
    mismatched_keys = set()
    for key, tensor in tensors.items():
        if is_head(key):
            dropped.append(origin[key])
        elif key not in shapes:
            unmapped.append(origin[key])
        elif tuple(tensor.shape) != shapes[key]:
            mismatched.append(f"{origin[key]} {tuple(tensor.shape)} vs {shapes[key]}")
            mismatched_keys.add(key)
        else:
            state_dict[key] = tensor
    missing = [key for key in shapes if key not in state_dict and key not in mismatched_keys]
    filled_default = _fill_num_batches_tracked(state_dict, missing, shapes)
    missing = [key for key in missing if key not in filled_default]
    ordered = {key: state_dict[key] for key in shapes if key in state_dict}
    report = CoverageReport(
        arch=arch,
        filled=len(ordered),
        expected=len(shapes),
        dropped=tuple(dropped),
        unmapped=tuple(unmapped),
        missing=tuple(missing),
        mismatched=tuple(mismatched),
        defaulted=tuple(filled_default),
    )
    return ordered, report
