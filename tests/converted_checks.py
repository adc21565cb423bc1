"""Check a pipeline's converted backbone file against the pretraining checkpoint it came from.

Used by the demo and SLURM pipeline tests instead of a file-size check: the file is loaded into
its target engine (Detectron2 / MMSegmentation through the converters' engine checks, a plain
torchvision ResNet for ``torchvision``) with zero missing or unexpected keys and the source's
features, and its tensors are compared by value with the checkpoint's raw encoder tensors.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
import torchvision

from converters.engines import FEATURE_TOLERANCE
from converters.reading import read_backbone
from converters.verify import verify_written


def raw_encoder(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The encoder the converters take by default (docs/converters.md): the momentum encoder when present."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return state["momentum_encoder"] if state.get("momentum_encoder") else state["encoder"]


def detectron2_name(name: str) -> str:
    """moco ``detection/convert-pretrain-to-detectron2.py``'s renaming of one torchvision ResNet key."""
    if "layer" not in name:
        name = "stem." + name
    for stage in (1, 2, 3, 4):
        name = name.replace(f"layer{stage}", f"res{stage + 1}")
    for index in (1, 2, 3):
        name = name.replace(f"bn{index}", f"conv{index}.norm")
    return name.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")


def file_tensor(out: Path, target: str, name: str) -> torch.Tensor:
    """Tensor ``name`` (torchvision naming) as the target file stores it, read without the converters' readers."""
    if target == "detectron2":
        with open(out, "rb") as handle:
            model = pickle.load(handle)["model"]
        return torch.as_tensor(model[detectron2_name(name)])
    state = torch.load(out, map_location="cpu", weights_only=True)
    return state["state_dict"][name] if target == "mmseg" else state[name]  # mmseg: backbone-level names


def assert_converted(checkpoint: Path, out: Path, target: str, arch: str = "resnet18") -> None:
    raw = raw_encoder(checkpoint)
    source = read_backbone(checkpoint)
    assert set(source.state_dict) == {k for k in raw if not k.startswith("fc.")}
    for name, value in source.state_dict.items():
        assert torch.equal(value, raw[name]), f"{checkpoint}: {name} read differently from the raw checkpoint"
    for name in ("conv1.weight", "layer4.1.bn2.running_var"):  # by value in the file itself
        assert torch.equal(file_tensor(out, target, name).to(raw[name].dtype), raw[name]), f"{out}: {name}"
    report = verify_written(source, out, target)
    assert report.tensors_compared == len(source.state_dict) and report.max_abs_feature_diff <= FEATURE_TOLERANCE
    if target == "torchvision":
        model = getattr(torchvision.models, arch)()
        loaded = model.load_state_dict(torch.load(out, map_location="cpu", weights_only=True), strict=False)
        assert loaded.unexpected_keys == [] and set(loaded.missing_keys) == {"fc.weight", "fc.bias"}
        for name, value in model.state_dict().items():
            assert name.startswith("fc.") or torch.equal(value, raw[name]), f"{out}: torchvision {name}"
    else:
        engines = [engine for engine in report.engines if engine.skipped is None]
        assert engines, f"{out}: no {target} engine was exercised: {[e.summary() for e in report.engines]}"
        for engine in engines:
            assert engine.missing == 0 and engine.unexpected == 0 and engine.max_abs_diff <= FEATURE_TOLERANCE
