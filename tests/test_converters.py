"""converters: every source x target on resnet18/resnet50, key layouts, strictness, verify, refusals."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from conftest import random_state

from converters import convert, convert_file, read_backbone, write_backbone
from converters.detectron2_keys import from_detectron2, to_detectron2
from converters.provenance import sidecar_path
from converters.safe_load import load_pickle
from converters.targets import get_target
from pretrain.models import build_backbone
from resa_core.atomic import sha256_file
from resa_core.errors import UserError

ARCHS = ("resnet18", "resnet50")
TARGET_FILES = {"detectron2": "out.pkl", "mmseg": "out.pth", "torchvision": "out.pth"}
SOURCE_KINDS = ("resa", "torchvision_bare", "detectron2", "mmseg", "torchvision_sidecar")


pytestmark = pytest.mark.usefixtures("one_torch_thread")

def write_resa_checkpoint(path, arch: str, online, momentum=None, epoch: int = 6):
    checkpoint = {
        "format_version": 1, "method": "resa", "arch": arch, "encoder": online,
        "config": {"lr": 0.5}, "epoch": epoch, "global_step": 60, "train_state": {"optimizer": {}},
    }
    if momentum is not None:
        checkpoint["momentum_encoder"] = momentum
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module", params=ARCHS)
def sources(request, tmp_path_factory):
    """arch, {kind: file}, and the canonical tensors each file holds."""
    arch = request.param
    root = tmp_path_factory.mktemp(arch)
    online, momentum = random_state(arch, 1), random_state(arch, 2)
    resa = write_resa_checkpoint(root / "resa.pth", arch, online, momentum)
    bare = random_state(arch, 3)
    with_fc = {**bare, "fc.weight": torch.randn(10, 8), "fc.bias": torch.randn(10)}
    torch.save(with_fc, root / "bare.pth")
    files = {
        "resa": resa,
        "torchvision_bare": root / "bare.pth",
        "detectron2": convert(resa, root / "d2.pkl", "detectron2"),
        "mmseg": convert(resa, root / "mmseg.pth", "mmseg"),
        "torchvision_sidecar": convert(resa, root / "tv.pth", "torchvision"),
    }
    expected = {kind: momentum for kind in files}
    expected["torchvision_bare"] = bare
    return arch, files, expected


@pytest.mark.parametrize("target", sorted(TARGET_FILES))
@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_every_source_to_every_target_maps_all_tensors_and_round_trips(sources, kind, target, tmp_path):
    arch, files, expected = sources
    backbone = read_backbone(files[kind])
    n_keys = len(build_backbone(arch).state_dict())
    assert backbone.arch == arch
    assert backbone.source_format == kind.split("_")[0]
    assert backbone.coverage.complete
    assert (backbone.coverage.filled, backbone.coverage.expected) == (n_keys, n_keys)
    assert list(backbone.state_dict) == list(build_backbone(arch).state_dict())

    out = write_backbone(backbone, tmp_path / TARGET_FILES[target], target)
    readback = read_backbone(out, source=get_target(target).reader)
    assert readback.state_dict.keys() == expected[kind].keys()
    for key, tensor in expected[kind].items():
        assert torch.equal(readback.state_dict[key], tensor), key


def test_provenance_travels_through_every_target(sources):
    arch, files, _ = sources
    source_sha = sha256_file(files["resa"])
    for kind in ("detectron2", "mmseg", "torchvision_sidecar"):
        backbone = read_backbone(files[kind])
        assert (backbone.arch, backbone.method, backbone.pretrain_epochs, backbone.encoder) == (
            arch, "resa", 6, "momentum",
        )
    meta = torch.load(files["mmseg"], weights_only=True)["meta"]
    sidecar = json.loads(sidecar_path(files["torchvision_sidecar"]).read_text())
    d2 = load_pickle(files["detectron2"])
    for record in (meta, sidecar, d2["provenance"]):
        assert record["source_sha256"] == source_sha
        assert record["source_format"] == "resa"


def test_detectron2_file_has_moco_layout(sources):
    _, files, expected = sources
    payload = load_pickle(files["detectron2"])
    model = payload["model"]
    assert payload["matching_heuristics"] is True
    assert "resa" in payload["__author__"]
    momentum = expected["detectron2"]
    for d2_key, tv_key in [
        ("stem.conv1.weight", "conv1.weight"),
        ("stem.conv1.norm.weight", "bn1.weight"),
        ("res2.0.conv1.norm.weight", "layer1.0.bn1.weight"),
        ("res3.0.shortcut.weight", "layer2.0.downsample.0.weight"),
        ("res3.0.shortcut.norm.running_mean", "layer2.0.downsample.1.running_mean"),
        ("res5.1.conv2.norm.bias", "layer4.1.bn2.bias"),
    ]:
        assert type(model[d2_key]).__module__ == "numpy"
        assert torch.equal(torch.from_numpy(model[d2_key]), momentum[tv_key])


def moco_detectron2_key(k: str) -> str:
    """The loop body of facebookresearch/moco detection/convert-pretrain-to-detectron2.py, verbatim logic."""
    if "layer" not in k:
        k = "stem." + k
    for t in [1, 2, 3, 4]:
        k = k.replace(f"layer{t}", f"res{t + 1}")
    for t in [1, 2, 3]:
        k = k.replace(f"bn{t}", f"conv{t}.norm")
    k = k.replace("downsample.0", "shortcut")
    k = k.replace("downsample.1", "shortcut.norm")
    return k


@pytest.mark.parametrize("arch", ARCHS)
def test_detectron2_mapping_equals_moco_and_inverts(arch):
    for key in build_backbone(arch).state_dict():
        assert to_detectron2(key) == moco_detectron2_key(key)
        assert from_detectron2(to_detectron2(key)) == key


def test_file_written_by_moco_script_layout_reads_back(tmp_path):
    """A .pkl as MoCo's script writes it (fc kept as stem.fc.*, no provenance) reads as resnet50."""
    state = random_state("resnet50", 4)
    full = {**state, "fc.weight": torch.randn(128, 2048), "fc.bias": torch.randn(128)}
    payload = {"model": {moco_detectron2_key(k): v.numpy() for k, v in full.items()},
               "__author__": "MOCO", "matching_heuristics": True}
    path = tmp_path / "moco.pkl"
    path.write_bytes(pickle.dumps(payload))
    backbone = read_backbone(path)
    assert backbone.arch == "resnet50" and backbone.method is None
    assert backbone.coverage.dropped == ("stem.fc.weight", "stem.fc.bias")
    assert all(torch.equal(backbone.state_dict[k], v) for k, v in state.items())


@pytest.mark.parametrize("target", sorted(TARGET_FILES))
def test_verify_passes_and_reports_feature_diff(sources, target, tmp_path):
    _, files, _ = sources
    conversion = convert_file(files["resa"], tmp_path / TARGET_FILES[target], target, verify=True)
    report = conversion.verify
    assert report.tensors_compared == len(conversion.backbone.state_dict)
    assert report.max_abs_feature_diff <= 1e-4
    assert "max |feature diff|" in report.summary()


def test_verify_catches_a_corrupted_write_and_removes_it(tmp_path, monkeypatch):
    import converters.targets.torchvision_state_dict as tv_target

    src = write_resa_checkpoint(tmp_path / "ck.pth", "resnet18", random_state("resnet18", 5))
    real_save = tv_target.torch_save_atomic

    def corrupting_save(path, state):
        state = dict(state)
        state["layer3.1.conv2.weight"] = state["layer3.1.conv2.weight"] * 1.5
        return real_save(path, state)

    monkeypatch.setattr(tv_target, "torch_save_atomic", corrupting_save)
    out = tmp_path / "out.pth"
    with pytest.raises(UserError, match="differ"):
        convert(src, out, "torchvision", verify=True)
    assert not out.exists() and not sidecar_path(out).exists()


def test_default_encoder_is_momentum_when_present(sources):
    _, files, expected = sources
    backbone = read_backbone(files["resa"])
    assert backbone.encoder == "momentum"
    assert all(torch.equal(backbone.state_dict[k], v) for k, v in expected["resa"].items())
    online = read_backbone(files["resa"], encoder="online")
    assert online.encoder == "online"
    assert not torch.equal(online.state_dict["conv1.weight"], backbone.state_dict["conv1.weight"])


def test_online_only_checkpoint_defaults_to_online_and_refuses_momentum(tmp_path):
    online = random_state("resnet18", 6)
    path = write_resa_checkpoint(tmp_path / "simclr.pth", "resnet18", online)
    backbone = read_backbone(path)
    assert backbone.encoder == "online"
    assert torch.equal(backbone.state_dict["layer4.1.bn2.weight"], online["layer4.1.bn2.weight"])
    with pytest.raises(UserError, match="momentum_encoder"):
        read_backbone(path, encoder="momentum")


def test_encoder_request_on_single_encoder_file_is_refused(sources):
    _, files, _ = sources
    with pytest.raises(UserError, match="single unnamed"):
        read_backbone(files["torchvision_bare"], encoder="online")


def test_fc_is_dropped_by_name_and_reported(sources):
    _, files, _ = sources
    coverage = read_backbone(files["torchvision_bare"]).coverage
    assert coverage.dropped == ("fc.weight", "fc.bias")
    assert "dropped: fc.weight, fc.bias" in coverage.summary()


def test_missing_and_unmapped_keys_are_reported(tmp_path):
    state = random_state("resnet18", 7)
    del state["layer1.0.bn1.running_var"]
    state["layer5.0.conv1.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(UserError) as err:
        read_backbone(path)
    message = str(err.value)
    assert "mapped 119/120 tensors of resnet18" in message
    assert "missing: layer1.0.bn1.running_var" in message
    assert "unmapped: layer5.0.conv1.weight" in message
    assert "\n" not in message


def test_shape_mismatch_against_sidecar_arch_is_reported(tmp_path):
    path = tmp_path / "cifar_weights.pth"
    torch.save(random_state("resnet18_cifar", 8), path)
    sidecar_path(path).write_text(json.dumps({"arch": "resnet18"}))
    with pytest.raises(UserError, match=r"shape mismatch: conv1.weight \(64, 3, 3, 3\) vs \(64, 3, 7, 7\)"):
        read_backbone(path)


@pytest.mark.parametrize("arch", ["resnet18", "resnet18_cifar", "resnet50"])
def test_arch_is_inferred_from_shapes(arch, tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(random_state(arch, 9), path)
    assert read_backbone(path).arch == arch


@pytest.mark.parametrize("target", ["detectron2", "mmseg"])
def test_cifar_stem_is_refused_for_detectron2_and_mmseg(target, tmp_path):
    src = write_resa_checkpoint(tmp_path / "cifar.pth", "resnet18_cifar", random_state("resnet18_cifar", 10))
    out = tmp_path / TARGET_FILES[target]
    with pytest.raises(UserError, match="7x7 stem"):
        convert(src, out, target)
    assert not out.exists()
    assert read_backbone(convert(src, tmp_path / "tv.pth", "torchvision")).arch == "resnet18_cifar"


def test_existing_output_is_kept_without_force(sources, tmp_path):
    _, files, _ = sources
    out = tmp_path / "out.pkl"
    out.write_bytes(b"precious")
    with pytest.raises(UserError, match="already exists"):
        convert(files["resa"], out, "detectron2")
    assert out.read_bytes() == b"precious"
    convert(files["resa"], out, "detectron2", force=True)
    assert read_backbone(out).source_format == "detectron2"


def test_wrong_output_suffix_is_refused(sources, tmp_path):
    _, files, _ = sources
    with pytest.raises(UserError, match=r"must end in \.pkl"):
        convert(files["resa"], tmp_path / "out.pth", "detectron2")


def test_torchvision_output_loads_strictly_into_the_registry_model(sources, tmp_path):
    arch, files, _ = sources
    out = convert(files["resa"], tmp_path / "tv.pth", "torchvision")
    build_backbone(arch).load_state_dict(torch.load(out, weights_only=True), strict=True)
    sidecar = json.loads(sidecar_path(out).read_text())
    assert {k: sidecar[k] for k in ("arch", "method", "pretrain_epochs", "encoder", "source_format")} == {
        "arch": arch, "method": "resa", "pretrain_epochs": 6, "encoder": "momentum", "source_format": "resa",
    }
