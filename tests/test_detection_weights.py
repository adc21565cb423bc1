"""The backbone that reaches Detectron2's model: every ResNet tensor, by value, against torchvision's names.

A random torchvision ResNet-50 (the file a supervised baseline or a converted SSL run is) goes
through ``downstream.detection.weights.load_into`` into the real R50-FPN and R50-C4 models of the
task configs. The expected placement is written out here independently of the converter and of
Detectron2's name heuristics: torchvision ``layerN.B.convK`` / ``bnK`` / ``downsample`` are
Detectron2's ``res{N+1}.B.convK`` / ``convK.norm`` / ``shortcut`` (Detectron2
``modeling/backbone/resnet.py``; MoCo ``detection/convert-pretrain-to-detectron2.py``), under
``backbone.bottom_up.`` (FPN) or ``backbone.`` with res5 in ``roi_heads.`` (C4).
"""

import re

import pytest
import torch
import torchvision
from conftest import require

from resa_core.errors import UserError


@pytest.fixture(scope="module")
def r50(tmp_path_factory):
    require("detectron2", "scripts/install_detection.sh")
    from downstream.detection.weights import read_weights

    path = tmp_path_factory.mktemp("weights") / "r50_tv.pth"
    torch.manual_seed(0)
    state = {k: v for k, v in torchvision.models.resnet50().state_dict().items() if not k.startswith("fc.")}
    torch.save(state, path)
    return state, read_weights(str(path))


def detectron2_name(tv_key: str, c4: bool) -> str:
    """torchvision ResNet name -> the Detectron2 model's name (independent of converters/)."""
    key = re.sub(r"^conv1\.", "stem.conv1.", tv_key)
    key = re.sub(r"^bn1\.", "stem.conv1.norm.", key)
    key = re.sub(r"^layer(\d)", lambda m: f"res{int(m.group(1)) + 1}", key)
    key = re.sub(r"\.bn(\d)\.", r".conv\1.norm.", key)
    key = key.replace(".downsample.0.", ".shortcut.").replace(".downsample.1.", ".shortcut.norm.")
    if not c4:
        return "backbone.bottom_up." + key
    return ("roi_heads." if key.startswith("res5.") else "backbone.") + key


def built(task_name: str):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from downstream.detection.config import build_cfg
    from downstream.detection.tasks import TASKS

    cfg = build_cfg(TASKS[task_name], [], world_size=1, seed=0, output_dir="unused")
    return DetectionCheckpointer(build_model(cfg))


@pytest.mark.parametrize(("task", "c4"), [("coco_mask_rcnn_r50_fpn_1x", False), ("voc07_faster_rcnn_r50_c4_24k", True)])
def test_every_resnet_tensor_holds_the_torchvision_value(r50, tmp_path, task, c4):
    from downstream.detection.weights import load_into

    state, backbone = r50
    checkpointer = built(task)
    report = load_into(checkpointer, backbone, tmp_path)
    assert report.as_dict() == {"resnet_keys": 318, "equal_values": 318}
    model = checkpointer.model.state_dict()
    for key, value in state.items():
        assert torch.equal(model[detectron2_name(key, c4)], value), key


def test_a_tensor_the_checkpointer_loaded_wrongly_is_an_error(r50, tmp_path, monkeypatch):
    """Names all match, one value does not (what a suffix heuristic can do): refused, naming the tensor."""
    from downstream.detection.weights import load_into

    state, backbone = r50
    checkpointer = built("coco_mask_rcnn_r50_fpn_1x")
    load_model = checkpointer._load_model

    def swapping_load(checkpoint):
        incompatible = load_model(checkpoint)
        with torch.no_grad():
            conv = checkpointer.model.backbone.bottom_up.res3[1].conv2
            conv.weight.copy_(checkpointer.model.backbone.bottom_up.res3[2].conv2.weight)
        return incompatible

    monkeypatch.setattr(checkpointer, "_load_model", swapping_load)
    with pytest.raises(UserError, match=r"1 of 318 ResNet tensors .* do not hold the file's values: "
                                        r"backbone.bottom_up.res3.1.conv2.weight$"):
        load_into(checkpointer, backbone, tmp_path)
