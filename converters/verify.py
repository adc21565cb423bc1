"""Check a written file: read it back, compare tensors, then load it into the real target model.

The read-back goes through the target's own reader (the path downstream takes), so a wrong key
mapping, a lost tensor or lost provenance fails here rather than in a week-long benchmark. Then
the target's engine check (:mod:`converters.engines`) loads the file into timm's, Detectron2's
or MMSegmentation's own model and compares its features with the source encoder's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from converters.backbone import Backbone
from converters.engines import FEATURE_TOLERANCE, EngineResult
from converters.reading import read_backbone
from converters.targets import get_target
from pretrain.models import arch_spec, build_backbone
from resa_core.errors import UserError

PROBE_SEED = 0


@dataclass(frozen=True)
class VerifyReport:
    tensors_compared: int
    max_abs_feature_diff: float  # registry model loaded with the read-back vs with the source
    engines: tuple[EngineResult, ...] = ()

    def summary(self) -> str:
        text = (
            f"verified: {self.tensors_compared} tensors equal, "
            f"max |feature diff| {self.max_abs_feature_diff:.2e} (tolerance {FEATURE_TOLERANCE:g})"
        )
        return "; ".join([text, *(engine.summary() for engine in self.engines)])


def _features(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], probe: torch.Tensor) -> torch.Tensor:
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    with torch.no_grad():
        return model(probe)


def _probe_input(arch: str) -> torch.Tensor:
    """A fixed seeded batch; 224 px for ViTs (fixed patch grid), 64 px is enough for any ResNet."""
    size = 224 if arch_spec(arch).family == "vit" else 64
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(PROBE_SEED))


def verify_written(backbone: Backbone, out: str | Path, to: str) -> VerifyReport:
    """Read ``out`` back as target ``to`` and check it holds ``backbone``; UserError if not."""
    readback = read_backbone(out, source=get_target(to).reader)
    where = f"{out}: verify"
    for field in ("arch", "method", "pretrain_epochs", "encoder"):
        got, expected = getattr(readback, field), getattr(backbone, field)
        if got != expected:
            raise UserError(f"{where}: {field} reads back as {got!r}, expected {expected!r}")
    read = readback.state_dict
    differing = [key for key, value in backbone.state_dict.items() if not torch.equal(read[key], value)]
    if differing:
        raise UserError(f"{where}: {len(differing)} tensors differ after read-back, e.g. {differing[0]}")
    probe = _probe_input(backbone.arch)
    model = build_backbone(backbone.arch)  # one model, loaded strictly with each side in turn
    source_features = _features(model, backbone.state_dict, probe)
    target_features = _features(model, readback.state_dict, probe)
    diff = (source_features - target_features).abs().max().item()
    if not diff <= FEATURE_TOLERANCE:
        raise UserError(f"{where}: features differ by {diff:.3e} (> {FEATURE_TOLERANCE:g})")
    check = get_target(to).engine_check
    engines = tuple(check(backbone, Path(out))) if check else ()
    failed = [engine.summary() for engine in engines if not engine.ok]
    if failed:
        raise UserError(f"{where}: {'; '.join(failed)} (tolerance {FEATURE_TOLERANCE:g}, 0 missing keys)")
    return VerifyReport(tensors_compared=len(backbone.state_dict), max_abs_feature_diff=diff, engines=engines)
