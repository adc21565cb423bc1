"""converters sources: every codebase's key layout is detected, mapped 100% and written to every target.

:func:`build` writes a file the way each codebase's training or release script does (the file
cited in the matching ``converters/sources/*.py``), from the registry's randomly initialised
models with random BatchNorm statistics (no network). A correct reader returns exactly the
encoder it was built from. ResNet-50 for every source, ViT-S/16 for the sources that ship ViTs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import random_state

from converters import read_backbone, write_backbone
from converters.sources import list_sources
from converters.targets import get_target, list_targets
from pretrain.models import arch_spec, build_backbone
from resa_core.errors import UserError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclass(frozen=True)
class Case:
    """One source file to build: ``build(path, online, momentum)`` writes it and returns its path."""

    source: str
    arch: str
    variant: str
    expected_encoder: str | None  # what read_backbone reports by default

    @property
    def id(self) -> str:
        return f"{self.source}-{self.variant}-{self.arch}"


def prefixed(prefix: str, state: dict) -> dict:
    return {prefix + key: value for key, value in state.items()}


_CHILD_INDEX = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}


def as_children(state: dict) -> dict:
    """torchvision names -> ``nn.Sequential(*resnet.children()[:-1])`` names (``layer1.`` -> ``4.``)."""
    return {_CHILD_INDEX[key.split(".", 1)[0]] + "." + key.split(".", 1)[1]: value for key, value in state.items()}


def _head(*shape) -> torch.Tensor:
    return torch.randn(*shape)


def _mlp_fc(prefix: str) -> dict:  # an MLP replacing torchvision's fc (MoCo v2/v3)
    return {f"{prefix}fc.0.weight": _head(16, 8), f"{prefix}fc.0.bias": _head(16), f"{prefix}fc.2.weight": _head(4, 16)}


def _vit_head(prefix: str) -> dict:
    return {f"{prefix}head.0.weight": _head(16, 384), f"{prefix}head.1.weight": _head(16)}


def _encoder_head(arch: str, prefix: str) -> dict:
    return _vit_head(prefix) if arch.startswith("vit") else _mlp_fc(prefix)


def build(case: Case, root: Path, online: dict, momentum: dict) -> Path:
    """Write ``case``'s file under ``root``; ``online``/``momentum`` are the two encoders' states."""
    arch, variant = case.arch, case.variant
    path = root / f"{case.id}.pth"
    if case.source == "resa":
        obj = {"format_version": 1, "method": "resa", "arch": arch, "encoder": online, "momentum_encoder": momentum,
               "config": {}, "epoch": 6, "global_step": 60, "train_state": {}}
    elif case.source == "resa_release" and variant == "full":
        obj = {"epoch": 100, "state_dict": {
            **prefixed("module.encoder.", online), **prefixed("module.momentum_encoder.", momentum),
            "module.projector.0.weight": _head(16, 8), "module.momentum_projector.0.weight": _head(16, 8),
            "module.predictor.0.weight": _head(16, 16)}, "optimizer": {"state": {}}}
    elif case.source == "resa_release":
        obj = {"state_dict": momentum}
    elif case.source in ("torchvision", "timm") and variant == "safetensors":
        from safetensors.torch import save_file

        path = path.with_suffix(".safetensors")
        save_file({k: v.contiguous() for k, v in momentum.items()}, str(path))
        return path
    elif case.source in ("torchvision", "timm"):
        obj = momentum
    elif case.source == "mocov2":
        obj = {"epoch": 200, "arch": arch, "optimizer": {"state": {}}, "state_dict": {
            **prefixed("module.encoder_q.", {**online, **_mlp_fc("")}),
            **prefixed("module.encoder_k.", {**momentum, **_mlp_fc("")}),
            "module.queue": _head(4, 32), "module.queue_ptr": torch.zeros(1, dtype=torch.long)}}
    elif case.source == "mocov3":
        obj = {"epoch": 300, "arch": arch, "optimizer": {"state": {}}, "scaler": {}, "state_dict": {
            **prefixed("module.base_encoder.", {**online, **_encoder_head(arch, "")}),
            **prefixed("module.momentum_encoder.", {**momentum, **_encoder_head(arch, "")}),
            "module.predictor.0.weight": _head(16, 4)}}
    elif case.source == "dino":
        teacher_prefix = "backbone." if arch.startswith("vit") else "module.backbone."  # DDP only with BatchNorm
        head = {"head.mlp.0.weight": _head(16, 8), "head.last_layer.weight_g": _head(1, 16)}
        obj = {"student": prefixed("module.", {**prefixed("backbone.", online), **head}),
               "teacher": {**prefixed(teacher_prefix, momentum), **prefixed(teacher_prefix[:-9], head)},
               "optimizer": {"state": {}}, "epoch": 100, "args": argparse.Namespace(arch=arch, out_dim=16),
               "dino_loss": {"center": _head(1, 16)}}
    elif case.source == "swav":
        prototypes = {"prototypes.prototypes0.weight": _head(8, 4)} if variant == "deepclusterv2" else {
            "prototypes.weight": _head(8, 4)}
        weights = prefixed("module.", {**momentum, "projection_head.0.weight": _head(16, 8), **prototypes})
        obj = weights if variant == "release" else {"epoch": 800, "state_dict": weights, "optimizer": {}}
    elif case.source in ("barlowtwins", "vicreg") and variant == "hub":
        obj = momentum  # model.module.backbone.state_dict() saved as resnet50.pth
    elif case.source in ("barlowtwins", "vicreg"):
        bn = {"module.bn.running_mean": _head(16), "module.bn.running_var": _head(16).abs()}
        obj = {"epoch": 1000, "optimizer": {"state": {}}, "model": {
            **prefixed("module.backbone.", momentum), "module.projector.0.weight": _head(16, 8),
            **(bn if case.source == "barlowtwins" else {})}}
    elif case.source == "byol":
        projection = {"projetion.net.0.weight": _head(16, 8)}
        obj = {"online_network_state_dict": {**prefixed("encoder.", as_children(online)), **projection},
               "target_network_state_dict": {**prefixed("encoder.", as_children(momentum)), **projection},
               "predictor_network_state_dict": {"net.0.weight": _head(16, 16)}, "optimizer_state_dict": {}}
    elif case.source == "solo_learn":
        obj = {"epoch": 400, "global_step": 4000, "pytorch-lightning_version": "2.0.7", "state_dict": {
            **prefixed("backbone.", online), **prefixed("momentum_backbone.", momentum),
            "projector.0.weight": _head(16, 8), "momentum_projector.0.weight": _head(16, 8),
            "classifier.weight": _head(10, 8)}}
    elif case.source == "lightly":
        obj = {"epoch": 10, "global_step": 100, "pytorch-lightning_version": "2.1.0", "state_dict": {
            **prefixed("backbone.", as_children(online)), **prefixed("backbone_momentum.", as_children(momentum)),
            "projection_head.layers.0.weight": _head(16, 8), "prediction_head.layers.0.weight": _head(16, 16)}}
    elif case.source == "mmselfsup" and variant == "extracted":
        obj = {"state_dict": momentum, "author": "MMSelfSup"}
    elif case.source == "mmselfsup":
        obj = {"meta": {"epoch": 200, "mmengine_version": "0.10.7"}, "state_dict": {
            **prefixed("backbone.", momentum), "neck.mlp.0.weight": _head(16, 8)}}
    elif case.source == "vissl":
        trunk = prefixed("_feature_blocks.", momentum)
        obj = {"phase_idx": 10, "classy_state_dict": {"base_model": {"model": {
            "trunk": trunk, "heads": {"0.clf.0.weight": _head(10, 8)}}}}} if variant == "training" else {
            "model_state_dict": trunk}
    else:
        raise ValueError(case)
    torch.save(obj, path)
    return path


MOMENTUM, ONLINE = "momentum", "online"
CASES = [
    Case("resa", "resnet50", "checkpoint", MOMENTUM),
    Case("resa", "vit_small_patch16", "checkpoint", MOMENTUM),
    Case("resa_release", "resnet50", "full", MOMENTUM),
    Case("resa_release", "vit_small_patch16", "full", MOMENTUM),
    Case("resa_release", "resnet50", "encoder_only", None),
    Case("torchvision", "resnet50", "bare", None),
    Case("torchvision", "resnet50", "safetensors", None),
    Case("timm", "vit_small_patch16", "bare", None),
    Case("timm", "vit_small_patch16", "safetensors", None),
    Case("mocov2", "resnet50", "training", ONLINE),  # MoCo's own converters take encoder_q / base_encoder
    Case("mocov3", "resnet50", "training", ONLINE),
    Case("mocov3", "vit_small_patch16_12h", "training", ONLINE),  # moco-v3 vits.py vit_small: 12 heads
    Case("dino", "resnet50", "training", "teacher"),
    Case("dino", "vit_small_patch16", "training", "teacher"),
    Case("swav", "resnet50", "training", None),
    Case("swav", "resnet50", "release", None),
    Case("swav", "resnet50", "deepclusterv2", None),
    Case("barlowtwins", "resnet50", "training", None),
    Case("vicreg", "resnet50", "training", None),
    Case("byol", "resnet50", "training", MOMENTUM),
    Case("solo_learn", "resnet50", "training", MOMENTUM),
    Case("lightly", "resnet50", "training", MOMENTUM),
    Case("mmselfsup", "resnet50", "training", None),
    Case("mmselfsup", "resnet50", "extracted", None),
    Case("vissl", "resnet50", "training", None),
    Case("vissl", "resnet50", "model_state_dict", None),
]
# Read with --from: their layout is the plain torchvision one, which auto-detection calls torchvision.
EXPLICIT_CASES = [Case("barlowtwins", "resnet50", "hub", None), Case("vicreg", "resnet50", "hub", None),
                  Case("timm", "resnet50", "bare", None)]
TARGET_SUFFIX = {"detectron2": ".pkl", "mmseg": ".pth", "timm": ".safetensors", "torchvision": ".pth"}


@pytest.fixture(scope="module")
def states():
    """arch -> (online, momentum) states, built once."""
    cache = {}

    def get(arch):
        if arch not in cache:
            cache[arch] = (random_state(arch, 11), random_state(arch, 12))
        return cache[arch]

    return get


@pytest.fixture(scope="module")
def source_file(states, tmp_path_factory):
    """case -> (path, expected canonical state), each file written once."""
    root, cache = tmp_path_factory.mktemp("sources"), {}

    def get(case):
        if case.id not in cache:
            online, momentum = states(case.arch)
            expected = online if case.expected_encoder in ("online", "student") else momentum
            cache[case.id] = (build(case, root, online, momentum), expected)
        return cache[case.id]

    return get


def assert_holds(backbone, expected: dict) -> None:
    assert list(backbone.state_dict) == list(expected)
    for key, tensor in expected.items():
        assert torch.equal(backbone.state_dict[key], tensor), key


def test_every_registered_source_has_a_case():
    assert {case.source for case in CASES + EXPLICIT_CASES} | {"detectron2", "mmseg"} == set(list_sources())


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_source_is_detected_and_every_tensor_maps(case, source_file):
    path, expected = source_file(case)
    backbone = read_backbone(path)
    n_keys = len(build_backbone(case.arch).state_dict())
    assert (backbone.source_format, backbone.arch, backbone.encoder) == (case.source, case.arch, case.expected_encoder)
    assert backbone.coverage.complete and backbone.coverage.filled == backbone.coverage.expected == n_keys
    assert_holds(backbone, expected)


@pytest.mark.parametrize("case", EXPLICIT_CASES, ids=lambda case: case.id)
def test_plain_layouts_read_with_from(case, source_file):
    path, expected = source_file(case)
    assert read_backbone(path).source_format == "torchvision"
    backbone = read_backbone(path, source=case.source)
    assert (backbone.source_format, backbone.arch) == (case.source, case.arch)
    assert_holds(backbone, expected)


TWO_ENCODER_CASES = [case for case in CASES if case.expected_encoder and case.source != "resa"]


OTHER_ENCODER = {"momentum": "online", "online": "momentum", "teacher": "student", "student": "teacher"}


@pytest.mark.parametrize("case", TWO_ENCODER_CASES, ids=lambda case: case.id)
def test_encoder_choice_picks_the_other_encoder(case, source_file, states):
    path, _ = source_file(case)
    online, momentum = states(case.arch)
    other = OTHER_ENCODER[case.expected_encoder]  # the default is tested above
    backbone = read_backbone(path, encoder=other)
    assert backbone.encoder == other
    assert_holds(backbone, online if other in ("online", "student") else momentum)


def test_teacher_and_student_are_aliases_of_momentum_and_online(source_file, states):
    online, momentum = states("resnet50")
    mocov2 = source_file(CASES[9])[0]
    assert_holds(read_backbone(mocov2, encoder="student"), online)
    assert read_backbone(mocov2, encoder="teacher").encoder == "momentum"
    dino = source_file(CASES[12])[0]
    assert read_backbone(dino, encoder="momentum").encoder == "teacher"


def test_report_names_dropped_heads_and_the_other_encoder(source_file):
    coverage = read_backbone(source_file(CASES[9])[0]).coverage  # mocov2, default encoder_q
    assert coverage.dropped == ("module.encoder_q.fc.0.weight", "module.encoder_q.fc.0.bias",
                                "module.encoder_q.fc.2.weight")
    summary = coverage.summary()
    assert "not this encoder: module.encoder_k.* (321 tensors), module.queue (1 tensor)" in summary
    assert "module.queue_ptr (1 tensor)" in summary
    dino = read_backbone(source_file(CASES[13])[0]).coverage.summary()  # dino vit
    assert "head.* (2 tensors)" in dino and "student (student encoder, 152 tensors)" in dino


def test_swav_prototypes_and_projection_head_are_dropped_by_name(source_file):
    coverage = read_backbone(source_file(CASES[16])[0]).coverage  # deepcluster-v2
    assert coverage.dropped == ("module.projection_head.0.weight", "module.prototypes.prototypes0.weight")


def test_single_encoder_source_refuses_an_encoder_request(source_file):
    with pytest.raises(UserError, match="single unnamed encoder"):
        read_backbone(source_file(CASES[14])[0], encoder="momentum")  # swav


def test_missing_tensor_in_a_prefixed_layout_is_reported_by_file_key(tmp_path, states):
    online, momentum = states("resnet50")
    case = Case("mocov2", "resnet50", "training", MOMENTUM)
    path = build(case, tmp_path, online, {k: v for k, v in momentum.items() if k != "layer3.2.bn2.running_var"})
    with pytest.raises(UserError, match=r"mapped 317/318 tensors of resnet50.*missing: layer3\.2\.bn2\.running_var"):
        read_backbone(path, encoder="momentum")


def test_absent_encoder_is_a_one_line_error(tmp_path, states):
    online, _ = states("resnet50")
    path = tmp_path / "moco_q_only.pth"
    torch.save({"state_dict": prefixed("module.encoder_q.", online)}, path)
    assert read_backbone(path).encoder == "online"
    with pytest.raises(UserError, match="this mocov2 file has no momentum encoder"):
        read_backbone(path, encoder="momentum")


@pytest.fixture(scope="module")
def backbones(source_file):
    cache = {}

    def get(case):
        if case.id not in cache:
            cache[case.id] = read_backbone(source_file(case)[0], source=case.source)
        return cache[case.id]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGET_SUFFIX))
@pytest.mark.parametrize("case", CASES + EXPLICIT_CASES, ids=lambda case: case.id)
def test_every_source_to_every_target(case, target, backbones, source_file, tmp_path):
    """Each pair writes a file whose read-back holds exactly the source encoder (100% of its tensors).

    The written file is a function of the canonical backbone only, so the feature/engine checks of
    ``--verify`` run per target and arch in test_converters_engines.py rather than per pair here.
    """
    backbone = backbones(case)
    out = tmp_path / f"out{TARGET_SUFFIX[target]}"
    if arch_spec(case.arch).family not in get_target(target).families:
        with pytest.raises(UserError, match=f"the {target} target writes resnet backbones only"):
            write_backbone(backbone, out, target)
        assert not out.exists()
        return
    write_backbone(backbone, out, target)
    readback = read_backbone(out, source=get_target(target).reader)
    assert readback.coverage.complete
    assert (readback.arch, readback.encoder, readback.method) == (backbone.arch, backbone.encoder, backbone.method)
    assert_holds(readback, source_file(case)[1])


def test_targets_are_the_four_of_the_issue():
    assert sorted(list_targets()) == ["detectron2", "mmseg", "timm", "torchvision"]
