"""Fast checks of the segmentation task (real mmseg configs and modules, no training).

The mmcv.ops stand-in, the task configs against the MMSelfSup protocol, linear scaling,
SyncBN -> BN, strict overrides, the data-layout error, strict backbone keys (ResNet-50 and the
converted ViT-S/16, which also runs a forward), and the scoped resume allow-list.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch
from conftest import require

INSTALL = "bash scripts/install_segmentation.sh"


@pytest.fixture(scope="module")
def mmseg():
    require("mmseg", INSTALL)
    from resa_core.mmseg_import import import_mmseg

    return import_mmseg()


def task_config(name: str):
    from mmengine.config import Config

    from downstream.segmentation.tasks import seg_task

    return Config.fromfile(str(seg_task(name).config_path))


@pytest.fixture(scope="module")
def r50_mmseg(tmp_path_factory):
    """A randomly initialised torchvision ResNet-50, converted by converters to an mmseg file."""
    import torchvision

    from converters import convert

    folder = tmp_path_factory.mktemp("r50")
    torch.manual_seed(0)
    state = {k: v for k, v in torchvision.models.resnet50().state_dict().items() if not k.startswith("fc.")}
    torch.save(state, folder / "r50_tv.pth")
    return convert(folder / "r50_tv.pth", folder / "r50_mmseg.pth", to="mmseg")


def test_lite_ops_serve_mmcv_point_sample_and_refuse_compiled_ops(mmseg):
    from resa_core.mmcv_lite_ops import has_compiled_ops

    if has_compiled_ops():
        pytest.skip("full mmcv installed: the stand-in is not registered")
    import mmcv.ops

    from resa_core.errors import UserError

    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    centres = torch.tensor([[[0.125, 0.125], [0.875, 0.375]]])  # (x, y) of pixel centres (0,0) and (row 1, col 3)
    assert mmcv.ops.point_sample(image, centres).flatten().tolist() == [0.0, 7.0]
    with pytest.raises(ModuleNotFoundError, match="full mmcv"):
        from mmcv.ops import RoIAlign  # noqa: F401
    with pytest.raises(UserError, match="compiled ops"):
        mmcv.ops.sigmoid_focal_loss(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))


@pytest.mark.parametrize("name", ["voc12aug_fcn_r50_d8_20k", "cityscapes_fcn_r50_d8_40k", "ade20k_upernet_r50_160k"])
def test_resnet_tasks_follow_the_mmselfsup_benchmark_backbone(mmseg, name):
    from downstream.segmentation.backbone_check import build_backbone

    cfg = task_config(name)
    backbone = cfg.model.backbone
    assert backbone.type == "ResNet" and backbone.depth == 50
    stem = build_backbone(backbone)  # torchvision's 7x7 stem, not ResNetV1c's three 3x3 convs (deep_stem)
    assert not stem.deep_stem and stem.conv1.kernel_size == (7, 7) and stem.conv1.stride == (2, 2)
    assert backbone.norm_cfg.type == "SyncBN" and backbone.norm_eval is False
    assert backbone.init_cfg.type == "Pretrained" and cfg.model.pretrained is None


def test_protocol_constants_come_from_the_cited_configs(mmseg):
    voc, city = task_config("voc12aug_fcn_r50_d8_20k"), task_config("cityscapes_fcn_r50_d8_40k")
    assert voc.train_cfg.max_iters == 20000 and voc.optim_wrapper.optimizer.lr == 0.01
    assert voc.model.decode_head.num_classes == 21 and voc.model.data_preprocessor.size == (512, 512)
    assert city.model.test_cfg.mode == "slide" and city.model.data_preprocessor.size == (769, 769)
    vit = task_config("ade20k_upernet_vit_s16_160k")
    assert vit.model.backbone.embed_dims == 384 and vit.model.backbone.final_norm and vit.model.backbone.patch_bias
    assert vit.train_cfg.max_iters == 160000 and vit.model.decode_head.num_classes == 150


def test_linear_scaling_of_lr_and_every_iteration_count(mmseg):
    from downstream.segmentation.scaling import Scaling, apply_scaling

    cfg = task_config("voc12aug_fcn_r50_d8_20k")
    line = apply_scaling(cfg, Scaling(reference_gpus=4, world_size=1))
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.0025)
    assert (cfg.train_cfg.max_iters, cfg.train_cfg.val_interval, cfg.default_hooks.checkpoint.interval) == (
        80000, 8000, 8000)
    assert cfg.param_scheduler[0].end == 80000
    assert cfg.param_scheduler[0].eta_min == pytest.approx(2.5e-5)  # mmseg schedule_20k's poly floor 1e-4, / 4
    assert "lr 0.01 -> 0.0025, iterations 20000 -> 80000" in line
    vit = task_config("ade20k_upernet_vit_s16_160k")
    apply_scaling(vit, Scaling(reference_gpus=8, world_size=2))
    assert [s.end for s in vit.param_scheduler] == [6000, 640000] and vit.param_scheduler[1].begin == 6000
    assert apply_scaling(task_config("voc12aug_fcn_r50_d8_20k"), Scaling(4, 4)) is None


@pytest.mark.parametrize(("name", "gpus", "per_gpu"), [("voc12aug_fcn_r50_d8_20k", 1, 16),
                                                        ("voc12aug_fcn_r50_d8_20k", 2, 8),
                                                        ("cityscapes_fcn_r50_d8_40k", 1, 8),
                                                        ("ade20k_upernet_vit_s16_160k", 4, 4)])
def test_fewer_gpus_keep_the_reference_total_batch_and_schedule(mmseg, name, gpus, per_gpu):
    """The default: mmseg's 4xb4 / 4xb2 / 8xb2 total batch split over the GPUs in use, lr and iterations as written."""
    from downstream.segmentation.scaling import Scaling, keep_total_batch
    from downstream.segmentation.tasks import seg_task

    cfg, reference = task_config(name), task_config(name)
    line = keep_total_batch(cfg, Scaling(seg_task(name).reference_gpus, gpus))
    assert cfg.train_dataloader.batch_size == per_gpu
    assert per_gpu * gpus == reference.train_dataloader.batch_size * seg_task(name).reference_gpus
    assert cfg.optim_wrapper.optimizer.lr == reference.optim_wrapper.optimizer.lr
    assert cfg.train_cfg == reference.train_cfg and cfg.param_scheduler == reference.param_scheduler
    assert f"{per_gpu} per GPU on {gpus} GPU(s)" in line


def test_a_total_batch_that_does_not_split_is_refused(mmseg):
    from downstream.segmentation.scaling import Scaling, keep_total_batch
    from resa_core.errors import UserError

    with pytest.raises(UserError, match="total batch of 16 images .* cannot be split over 3 GPUs"):
        keep_total_batch(task_config("voc12aug_fcn_r50_d8_20k"), Scaling(4, 3))


def test_a_rerun_resumes_only_an_identical_config(mmseg, r50_mmseg, tmp_path):
    """mmengine auto-resumes from the work dir's last checkpoint: other overrides must get another work dir."""
    from downstream.segmentation.cli import parse_args
    from downstream.segmentation.run import SegRun
    from downstream.segmentation.tasks import seg_task
    from downstream.segmentation.tiny_data import build_tiny_voc

    build_tiny_voc(tmp_path / "data")
    task = seg_task("voc12aug_fcn_r50_d8_20k")

    def work_dir(*overrides: str, seed: int = 0) -> Path:
        args = parse_args(["--task", task.name, "--weights", str(r50_mmseg), "--run-dir", str(tmp_path / "run"),
                           "--data-root", str(tmp_path / "data"), "--seed", str(seed), *overrides])
        with pytest.warns(UserWarning, match="SyncBN"):
            run = SegRun.prepare(args, task, "none", 1)
        assert run.cfg.work_dir == str(run.work_dir) and (run.work_dir / "backbone_mmseg.pth").is_file()
        return run.work_dir

    first = work_dir("train_cfg.max_iters=8")
    assert work_dir("train_cfg.max_iters=8") == first
    others = {work_dir("train_cfg.max_iters=16"), work_dir("train_cfg.max_iters=8", "optim_wrapper.optimizer.lr=0.1"),
              work_dir("train_cfg.max_iters=8", "--linear-scaling"), work_dir("train_cfg.max_iters=8", seed=1)}
    assert first not in others and len(others) == 4


def test_syncbn_becomes_bn(mmseg):
    from downstream.segmentation.norm import replace_syncbn

    cfg = task_config("ade20k_upernet_r50_160k")
    assert replace_syncbn(cfg.model) == 3  # backbone, decode head, auxiliary head
    assert "SyncBN" not in str(cfg.model.to_dict())
    assert cfg.model.backbone.norm_cfg.type == "BN" and cfg.model.decode_head.norm_cfg.type == "BN"


def test_overrides_are_strict(mmseg):
    from downstream.segmentation.overrides import apply_overrides
    from resa_core.errors import UserError

    cfg = task_config("voc12aug_fcn_r50_d8_20k")
    apply_overrides(cfg, ["train_cfg.max_iters=8", "model.backbone.frozen_stages=1",
                          "val_dataloader.dataset.pipeline.1.scale=[128,64]"])
    assert cfg.train_cfg.max_iters == 8 and cfg.model.backbone.frozen_stages == 1
    assert cfg.val_dataloader.dataset.pipeline[1].scale == (128, 64)  # tuple kept: mmseg asserts on it
    for bad in ("train_cfgg.max_iters=8", "optim_wrapper.optimizer.lr.x=1", "param_scheduler.5.end=3",
                "default_scope.x=1", "no_equals_sign", "env_cfg.cudnn_benchmarkk=true"):
        with pytest.raises(UserError, match="override"):
            apply_overrides(cfg, [bad])


def test_missing_data_names_the_expected_layout(mmseg, r50_mmseg, tmp_path):
    from downstream.segmentation.cli import main
    from resa_core.errors import UserError

    with pytest.raises(UserError, match=r"VOCdevkit/VOC2012.*missing or empty.*JPEGImages/\*\.jpg"):
        main(["--task", "voc12aug_fcn_r50_d8_20k", "--weights", str(r50_mmseg), "--run-dir", str(tmp_path),
              "--data-root", str(tmp_path / "nothing")])
    assert not (tmp_path / "records").exists()


def test_resnet50_backbone_keys_strict(mmseg, r50_mmseg):
    from converters.safe_load import load_torch
    from downstream.segmentation.backbone_check import build_backbone, check_backbone_keys
    from resa_core.errors import UserError

    state_dict = load_torch(r50_mmseg)["state_dict"]
    backbone = task_config("voc12aug_fcn_r50_d8_20k").model.backbone
    assert check_backbone_keys(build_backbone(backbone), state_dict, "r50") == len(state_dict) == 318
    prefixed = {f"backbone.{key}": value for key, value in state_dict.items()}
    with pytest.raises(UserError, match="318 missing keys.*318 unexpected keys"):
        check_backbone_keys(build_backbone(backbone), prefixed, "prefixed")
    with pytest.raises(UserError, match="missing keys .*stem"):  # ResNetV1c's deep stem cannot take it
        check_backbone_keys(build_backbone(dict(backbone, type="ResNetV1c")), state_dict, "v1c")


def test_vit_s16_converted_backbone_loads_strictly_and_runs(mmseg, tmp_path):
    from mmseg.registry import MODELS

    from converters import convert
    from converters.safe_load import load_torch
    from downstream.segmentation.backbone_check import build_backbone, check_backbone_keys, check_backbone_loaded
    from pretrain.models import build_backbone as build_arch
    from resa_core.errors import UserError

    torch.manual_seed(0)
    torch.save(build_arch("vit_small_patch16").state_dict(), tmp_path / "vits_timm.pth")
    path = convert(tmp_path / "vits_timm.pth", tmp_path / "vits_mmseg.pth", to="mmseg")
    state_dict = load_torch(path)["state_dict"]
    cfg = dict(task_config("ade20k_upernet_vit_s16_160k").model.backbone, img_size=(64, 64))
    assert check_backbone_keys(build_backbone(cfg), state_dict, str(path)) == len(state_dict)
    model = MODELS.build(dict(cfg, init_cfg=dict(type="Pretrained", checkpoint=str(path))))
    model.init_weights()  # mmseg's own Pretrained path (resizes pos_embed 197 -> 17 tokens)
    check_backbone_loaded(model, state_dict, str(path))
    outputs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(out.shape) for out in outputs] == [(1, 384, 4, 4)] * 4
    with torch.no_grad():  # a position embedding that stayed at its random init (resized shape, other values)
        model.pos_embed.copy_(torch.randn_like(model.pos_embed) * 0.02)
    with pytest.raises(UserError, match=r"did not load 1 of the backbone's tensors \(pos_embed\)"):
        check_backbone_loaded(model, state_dict, str(path))


def test_resume_allow_list_is_scoped(mmseg, tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer

    from downstream.segmentation.resume import SafeResumeRunner, history_buffer_method
    from resa_core.errors import UserError

    assert history_buffer_method(HistoryBuffer, "min") == HistoryBuffer.min
    for obj, name in ((HistoryBuffer, "__init__"), (HistoryBuffer.min, "__globals__"), (torch, "load")):
        with pytest.raises(UserError, match="refusing getattr"):
            history_buffer_method(obj, name)
    with pytest.raises(UserError, match="only reads checkpoints that this run wrote"):
        SafeResumeRunner.resume(types.SimpleNamespace(work_dir=str(tmp_path / "run")), str(tmp_path / "user.pth"))
    torch.save({"buffer": HistoryBuffer()}, tmp_path / "hb.pth")
    with pytest.raises(Exception, match="Unsupported global"):  # outside the resume, nothing extra is allowed
        torch.load(tmp_path / "hb.pth", weights_only=True)


def test_wrong_arch_is_a_user_error(mmseg, r50_mmseg, tmp_path):
    from downstream.segmentation.cli import main
    from resa_core.errors import UserError

    with pytest.raises(UserError, match="needs a vit_small_patch16 backbone, this file holds resnet50"):
        main(["--task", "ade20k_upernet_vit_s16_160k", "--weights", str(r50_mmseg), "--run-dir", str(tmp_path)])


def test_launcher_from_environment_and_num_gpus(monkeypatch):
    from downstream.segmentation.cli import _without_num_gpus
    from downstream.segmentation.launch import detect_launcher, torchrun_command
    from resa_core.errors import UserError

    for name in ("WORLD_SIZE", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    assert detect_launcher("auto") == ("none", 1)
    with pytest.raises(UserError, match="not started by torchrun"):
        detect_launcher("pytorch")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert detect_launcher("auto") == ("slurm", 8)
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert detect_launcher("auto") == ("pytorch", 4)
    argv = _without_num_gpus(["--task", "t", "--num-gpus", "4", "--num-gpus=4", "k=v"])
    assert argv == ["--task", "t", "k=v"]
    assert torchrun_command(4, argv)[2:5] == ["torch.distributed.run", "--standalone", "--nproc_per_node=4"]


# Cityscapes polygons (the format of *_gtFine_polygons.json): overlapping, a '...group' label, a label with
# id < 0 (license plate) and a deleted object, which cityscapesscripts' json2labelImg treats specially.
CITYSCAPES_OBJECTS = [
    {"label": "road", "polygon": [[0, 8], [31, 8], [31, 15], [0, 15]]},
    {"label": "sky", "polygon": [[0, 0], [31, 0], [31, 3], [0, 3]]},
    {"label": "cargroup", "polygon": [[4, 4], [14, 4], [14, 12], [4, 12]]},
    {"label": "license plate", "polygon": [[6, 9], [9, 9], [9, 11], [6, 11]]},
    {"label": "parking", "polygon": [[16, 6], [26, 6], [26, 13], [16, 13]]},
    {"label": "person", "polygon": [[20, 2], [24, 2], [24, 14], [20, 14]]},
    {"label": "bus", "polygon": [[27, 2], [30, 2], [30, 14], [27, 14]], "deleted": 1},
]


def test_raw_cityscapes_is_refused_then_converted_as_cityscapesscripts_does(mmseg, tmp_path):
    """Raw gtFine (labelIds) fails the layout check on the missing label files; ``prepare cityscapes`` writes
    what mmseg's cityscapes.py writes (cityscapesscripts json2labelImg 'trainIds'), and mmseg reads it."""
    import json

    import numpy as np
    from mmseg.registry import DATASETS, MODELS
    from PIL import Image

    from downstream.segmentation.data_layout import check_layout, set_data_root
    from downstream.segmentation.prepare import main as prepare
    from downstream.segmentation.tasks import seg_task
    from resa_core.errors import UserError

    json2label = require("cityscapesscripts.preparation.json2labelImg", INSTALL).json2labelImg
    task = seg_task("cityscapes_fcn_r50_d8_40k")
    cfg = task_config(task.name)
    root = tmp_path / "cityscapes"
    set_data_root(cfg, root)
    stem = "aachen_000000_000019"
    for split in ("train", "val"):
        images, labels = root / "leftImg8bit" / split / "aachen", root / "gtFine" / split / "aachen"
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        Image.fromarray(np.zeros((16, 32, 3), np.uint8)).save(images / f"{stem}_leftImg8bit.png")
        polygons = labels / f"{stem}_gtFine_polygons.json"
        polygons.write_text(json.dumps({"imgHeight": 16, "imgWidth": 32, "objects": CITYSCAPES_OBJECTS}))
        json2label(str(polygons), str(labels / f"{stem}_gtFine_labelIds.png"), "ids")  # what the zip holds
        json2label(str(polygons), str(tmp_path / f"{split}_trainIds_upstream.png"), "trainIds")
    wanted = root / "gtFine" / "train" / "aachen" / f"{stem}_gtFine_labelTrainIds.png"
    with pytest.raises(UserError, match=rf"1 of 1 label files missing, e.g. {wanted}; .*prepare cityscapes"):
        check_layout(cfg, task.layout)
    assert prepare(["cityscapes", str(root)]) == 0
    for split in ("train", "val"):
        ours = np.asarray(Image.open(root / "gtFine" / split / "aachen" / f"{stem}_gtFine_labelTrainIds.png"))
        upstream = np.asarray(Image.open(tmp_path / f"{split}_trainIds_upstream.png"))
        assert np.array_equal(ours, upstream) and {0, 10, 11, 13, 255} <= set(np.unique(ours).tolist())
    check_layout(cfg, task.layout)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 1 and dataset.get_data_info(0)["seg_map_path"] == str(wanted)
    sample = dataset[0]
    height, width = sample["data_samples"].gt_sem_seg.data.shape[-2:]
    assert height <= 769 and width == 769  # RandomCrop: at most the crop; a 1:2 image is wider than it after resize
    batch = MODELS.build(cfg.model.data_preprocessor)({k: [v] for k, v in sample.items()}, training=True)
    assert batch["inputs"].shape[-2:] == batch["data_samples"][0].gt_sem_seg.data.shape[-2:] == (769, 769)  # padded


def test_sbd_augmented_voc_is_built_as_mmseg_voc_aug_does(mmseg, tmp_path):
    """``prepare voc-aug``: SBD's GTcls.Segmentation .mat -> SegmentationClassAug png, aug.txt = SBD - VOC train/val,
    trainaug.txt = VOC train + SBD - VOC val (mmseg voc_aug.py); a missing JPEG fails at the layout check."""
    import numpy as np
    from PIL import Image
    from scipy.io import savemat

    from downstream.segmentation.data_layout import check_layout, set_data_root
    from downstream.segmentation.prepare import main as prepare
    from downstream.segmentation.tasks import seg_task
    from downstream.segmentation.tiny_data import build_tiny_voc
    from resa_core.errors import UserError

    voc = build_tiny_voc(tmp_path / "data", n_train=3, n_val=2)
    for generated in [*(voc / "SegmentationClassAug").iterdir(), voc / "ImageSets/Segmentation/aug.txt"]:
        generated.unlink()
    task = seg_task("voc12aug_fcn_r50_d8_20k")
    cfg = task_config(task.name)
    set_data_root(cfg, voc)
    with pytest.raises(UserError, match="SegmentationClassAug is missing or empty.*prepare voc-aug"):
        check_layout(cfg, task.layout)
    sbd = tmp_path / "benchmark_RELEASE" / "dataset"
    (sbd / "cls").mkdir(parents=True)
    (sbd / "train.txt").write_text("train_000\nsbd_000\n")
    (sbd / "val.txt").write_text("val_001\nsbd_001\n")
    rng = np.random.default_rng(0)
    masks = {}
    for name in ("train_000", "sbd_000", "val_001", "sbd_001"):
        masks[name] = rng.integers(0, 21, (64, 64)).astype(np.uint8)
        savemat(sbd / "cls" / f"{name}.mat", {"GTcls": {"Segmentation": masks[name], "CategoriesPresent": [1]}})
    for name in ("sbd_000", "sbd_001"):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3)).astype(np.uint8)).save(voc / "JPEGImages" / f"{name}.jpg")
    assert prepare(["voc-aug", str(voc.parent), str(sbd.parent)]) == 0
    splits = voc / "ImageSets" / "Segmentation"
    assert (splits / "aug.txt").read_text().split() == ["sbd_000", "sbd_001"]
    assert (splits / "trainaug.txt").read_text().split() == ["sbd_000", "sbd_001", "train_000", "train_001",
                                                              "train_002"]
    for name, mask in masks.items():
        assert np.array_equal(np.asarray(Image.open(voc / "SegmentationClassAug" / f"{name}.png")), mask)
    check_layout(cfg, task.layout)
    (voc / "JPEGImages" / "sbd_001.jpg").unlink()
    with pytest.raises(UserError, match=r"train_dataloader: 1 of 2 image files missing, e.g. .*sbd_001.jpg"):
        check_layout(cfg, task.layout)
