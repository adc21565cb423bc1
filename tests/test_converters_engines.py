"""``--verify`` loads converted files into the real frameworks' models and compares features.

timm always; Detectron2 (R50-C4 and R50-FPN) and MMSegmentation (ResNet-50, ViT-S/16) through
``require``: skipped on a developer machine without them, a failure in CI, whose test command
installs both engines.
"""

from __future__ import annotations

import pytest
import torch
from conftest import random_state, require

from converters import convert_file, read_backbone, write_backbone
from converters.engines import FEATURE_TOLERANCE
from converters.engines.mmseg_model import check_mmseg
from converters.engines.timm_model import check_timm
from resa_core.errors import UserError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCHS = ("resnet50", "vit_small_patch16")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """arch -> a resa checkpoint with random online and momentum encoders."""
    root = tmp_path_factory.mktemp("engines")
    files = {}
    for arch in ARCHS:
        files[arch] = root / f"{arch}.pth"
        torch.save({"format_version": 1, "method": "resa", "arch": arch, "encoder": random_state(arch, 21),
                    "momentum_encoder": random_state(arch, 22), "config": {}, "epoch": 3, "global_step": 9,
                    "train_state": {}}, files[arch])
    return files


def assert_engines_passed(conversion, expected_models: list[str]) -> None:
    engines = conversion.verify.engines
    assert [engine.model for engine in engines] == expected_models
    for engine in engines:
        assert engine.skipped is None, engine.summary()
        assert (engine.missing, engine.unexpected) == (0, 0), engine.summary()
        assert engine.max_abs_diff <= FEATURE_TOLERANCE, engine.summary()
        assert engine.summary() in conversion.verify.summary()


@pytest.mark.parametrize(("arch", "suffix", "timm_name"), [
    ("resnet50", ".safetensors", "resnet50"), ("vit_small_patch16", ".pth", "vit_small_patch16_224"),
])
def test_timm_verify_loads_into_timm_create_model(checkpoints, arch, suffix, timm_name, tmp_path):
    conversion = convert_file(checkpoints[arch], tmp_path / f"out{suffix}", "timm", verify=True)
    assert_engines_passed(conversion, [f"timm {timm_name}"])


def test_timm_engine_check_catches_swapped_blocks(checkpoints, tmp_path):
    """Same keys and shapes, wrong tensors: only a feature comparison can see it."""
    backbone = read_backbone(checkpoints["vit_small_patch16"])
    out = write_backbone(backbone, tmp_path / "swapped.pth", "timm")
    state = torch.load(out, weights_only=True)
    state["blocks.2.attn.qkv.weight"], state["blocks.3.attn.qkv.weight"] = (
        state["blocks.3.attn.qkv.weight"], state["blocks.2.attn.qkv.weight"])
    torch.save(state, out)
    (result,) = check_timm(backbone, out)
    assert not result.ok and result.max_abs_diff > FEATURE_TOLERANCE


def test_detectron2_verify_r50_c4_and_fpn_fill_every_backbone_key(checkpoints, tmp_path):
    require("detectron2", "scripts/install_detection.sh")
    conversion = convert_file(checkpoints["resnet50"], tmp_path / "r50.pkl", "detectron2", verify=True)
    assert_engines_passed(conversion, ["Detectron2 R50-C4", "Detectron2 R50-FPN"])


@pytest.fixture(scope="module")
def mmseg():
    require("mmseg", "scripts/install_segmentation.sh")
    from resa_core.mmseg_import import import_mmseg

    return import_mmseg()  # registers mmcv-lite's missing ops, as the converters' verify does


@pytest.mark.parametrize(("arch", "model"), [
    ("resnet50", "MMSegmentation ResNet(depth=50)"), ("vit_small_patch16", "MMSegmentation VisionTransformer ViT-S/16"),
])
def test_mmseg_verify_loads_strictly_into_mmseg_backbones(mmseg, checkpoints, arch, model, tmp_path):
    conversion = convert_file(checkpoints[arch], tmp_path / "out.pth", "mmseg", verify=True)
    assert_engines_passed(conversion, [model])


def test_mmseg_vit_file_has_vit2mmseg_names(checkpoints, tmp_path):
    out = convert_file(checkpoints["vit_small_patch16"], tmp_path / "vit.pth", "mmseg").out
    state = torch.load(out, weights_only=True)["state_dict"]
    for key in ("patch_embed.projection.weight", "layers.0.ln1.weight", "layers.0.attn.attn.in_proj_weight",
                "layers.0.attn.attn.out_proj.bias", "layers.11.ffn.layers.0.0.weight", "layers.11.ffn.layers.1.bias",
                "layers.11.ln2.bias", "ln1.weight", "cls_token", "pos_embed"):
        assert key in state, key
    assert not any(key.startswith(("blocks.", "norm.", "backbone.")) for key in state)


def test_mmseg_engine_refuses_a_misnamed_key(mmseg, checkpoints, tmp_path):
    backbone = read_backbone(checkpoints["vit_small_patch16"])
    out = write_backbone(backbone, tmp_path / "bad.pth", "mmseg")
    payload = torch.load(out, weights_only=True)
    payload["state_dict"]["layers.0.norm1.weight"] = payload["state_dict"].pop("layers.0.ln1.weight")
    torch.save(payload, out)
    with pytest.raises(UserError, match=r"bad\.pth: verify: MMSegmentation VisionTransformer ViT-S/16 refuses"):
        check_mmseg(backbone, out)
