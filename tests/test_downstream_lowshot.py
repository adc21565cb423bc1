"""Image-training tasks: low-shot fine-tuning and the ImageNet linear protocol on an ImageFolder tree."""

import json
from pathlib import Path

import pytest
import timm
import torch
from test_downstream_layouts import write_image_tree

from downstream.cli import main
from downstream.finetune import LastBlocksCLS, TrainSpec, train_and_evaluate
from pretrain.models import build_backbone
from resa_core.data.catalog import open_dataset
from resa_core.errors import run_cli

CONFIG = {"image_size": 16, "resize_size": 16, "normalization": "imagenet", "num_workers": 0}


@pytest.fixture()
def folder(tmp_path):
    write_image_tree(tmp_path / "data" / "train", {"cat": 10, "dog": 10})
    write_image_tree(tmp_path / "data" / "test", {"cat": 3, "dog": 3}, seed=1)
    return tmp_path / "data"


def _run(argv):
    with pytest.raises(SystemExit) as info:
        run_cli(main, argv)
    return info.value.code


def test_lowshot_cli_on_imagefolder_subset(tmp_path, folder):
    argv = ["lowshot", "--dataset", "imagefolder", "--weights", "random:resnet18", "--run-dir", str(tmp_path / "run"),
            f"data_root={folder}", "label_subset=10percent", "epochs=2", "train_batch_size=2",
            "image_size=16", "resize_size=16", "num_workers=0"]
    assert _run(argv) == 0
    (path,) = (tmp_path / "run" / "records" / "lowshot").rglob("seed0.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok" and set(record["metrics"]) == {"top1", "top5"}
    assert record["metrics"]["top5"] == 100.0  # two classes: both are always in the top 5


def test_lowshot_without_label_subset_fails_with_a_record(tmp_path, folder, capsys):
    argv = ["lowshot", "--dataset", "imagefolder", "--weights", "pixels", "--run-dir", str(tmp_path / "run"),
            f"data_root={folder}"]
    assert _run(argv) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    (path,) = (tmp_path / "run" / "records").rglob("seed0.json")
    assert json.loads(path.read_text())["status"] == "failed"


@pytest.mark.parametrize("encoder_lr", [None, 0.05])
def test_encoder_is_frozen_for_the_probe_and_trained_for_finetuning(folder, encoder_lr):
    torch.manual_seed(0)
    encoder = build_backbone("resnet18")
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    spec = TrainSpec(epochs=1, batch_size=10, head_lr=0.1, encoder_lr=encoder_lr, weight_decay=0.0,
                     schedule="multistep", milestones=(1,))
    train, test = open_dataset("imagefolder", "train", folder), open_dataset("imagefolder", "test", folder)
    metrics = train_and_evaluate(encoder, "resnet", train, test, spec, CONFIG, seed=0)
    changed = any(not torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    assert changed == (encoder_lr is not None)
    assert 0.0 <= metrics["top1"] <= 100.0


def test_vit_last_four_cls_tokens_equal_dino_transcription():
    torch.manual_seed(0)
    vit = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0).eval()
    images = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ours = LastBlocksCLS(vit, 4)(images)
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))
        tokens = []
        for index, block in enumerate(vit.blocks):  # DINO get_intermediate_layers: norm(x) of the last n blocks
            x = block(x)
            if index >= len(vit.blocks) - 4:
                tokens.append(vit.norm(x)[:, 0])
    torch.testing.assert_close(ours, torch.cat(tokens, dim=-1))
    assert ours.shape == (1, 4 * 384)


def test_linear_imagenet_protocol_cli_with_preset(tmp_path, folder):
    preset = Path(__file__).resolve().parents[1] / "downstream/presets/linear_in100_r18_b128.yaml"
    argv = ["linear", "--dataset", "imagefolder", "--weights", "random:resnet18", "--run-dir", str(tmp_path / "run"),
            "--config", str(preset), f"data_root={folder}", "imagenet.epochs=1", "imagenet.batch_size=10",
            "imagenet.milestones=[1]", "image_size=16", "resize_size=16", "num_workers=0"]
    assert _run(argv) == 0
    (path,) = (tmp_path / "run" / "records" / "linear").rglob("seed0.json")
    record = json.loads(path.read_text())
    assert record["config"]["imagenet"]["lr"] == 5.0 and record["config"]["protocol"] == "imagenet"
    assert record["status"] == "ok" and set(record["metrics"]) == {"top1", "top5"}
    assert not (tmp_path / "run" / "features").exists()  # trained on images, nothing extracted
