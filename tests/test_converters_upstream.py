"""Converters against files built the way each upstream codebase saves them (issue 15, items 1-5).

Each test builds the upstream model as its own code defines it (file/function cited), saves the
checkpoint as its training script does, converts it, and compares features of the converted file
with the upstream model's on a random input. The defects these catch kept every key and shape
right, so only such a comparison sees them.
"""

from __future__ import annotations

import argparse
import copy
import json
import pathlib
import subprocess
import sys
import textwrap
from functools import partial

import pytest
import timm
import torch
from conftest import REPO_ROOT, require
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from torchvision.models import resnet18

from converters import convert_file, read_backbone
from converters.engines import FEATURE_TOLERANCE
from converters.safe_load import load_torch
from pretrain.models import build_backbone
from resa_core.errors import UserError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Random weights, norms and BN statistics, so a wrong head split or stem shows in the features."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator)
                if name.endswith("running_var"):
                    tensor.copy_(noise.abs() + 0.5)
                elif name.endswith(("weight", "bias")) and tensor.dim() == 1:
                    tensor.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * noise)
                else:
                    tensor.copy_(noise * 0.05)
    return model.eval()


def prefixed(prefix: str, state: dict) -> dict:
    return {prefix + key: value for key, value in state.items()}


def features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def relative_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


# ---------------------------------------------------------------- item 1: MoCo v3 ViT-S has 12 heads
def mocov3_vit_small() -> VisionTransformer:
    """facebookresearch/moco-v3 ``vits.py`` ``vit_small``: timm's VisionTransformer with these arguments
    (``VisionTransformerMoCo`` only replaces the initial pos_embed by a fixed sin-cos one, a weight)."""
    return VisionTransformer(patch_size=16, embed_dim=384, depth=12, num_heads=12, mlp_ratio=4, qkv_bias=True,
                             norm_layer=partial(nn.LayerNorm, eps=1e-6))


def mlp_head(in_dim: int, hidden: int, out: int) -> nn.Sequential:
    """moco-v3 ``moco/builder.py`` ``MoCo._build_mlp`` (here 2 layers, tiny dims)."""
    return nn.Sequential(nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out, bias=False), nn.BatchNorm1d(out, affine=False))


@pytest.fixture(scope="module")
def mocov3_file(tmp_path_factory):
    """moco-v3 ``main_moco.py`` ``save_checkpoint({'epoch', 'arch', 'state_dict', 'optimizer', 'scaler'})`` of the
    DDP-wrapped ``MoCo_ViT`` (``moco/builder.py``: base_encoder/momentum_encoder with an MLP ``head``, predictor)."""
    base = randomise(mocov3_vit_small(), 1)
    momentum = randomise(mocov3_vit_small(), 2)
    base.head, momentum.head = mlp_head(384, 32, 16), mlp_head(384, 32, 16)
    model = nn.Module()
    model.base_encoder, model.momentum_encoder, model.predictor = base, momentum, mlp_head(16, 32, 16)
    path = tmp_path_factory.mktemp("mocov3") / "checkpoint_0299.pth.tar"
    torch.save({"epoch": 300, "arch": "vit_small", "state_dict": prefixed("module.", model.state_dict()),
                "optimizer": {"state": {}, "param_groups": []}, "scaler": {}}, path)
    base.head = nn.Identity()  # main_lincls.py replaces it by the linear classifier: features are the cls token
    return path, base


def test_mocov3_vit_small_converts_to_12_heads_in_timm_and_mmseg(mocov3_file, tmp_path):
    path, upstream = mocov3_file
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    expected = features(upstream, x)
    six_heads = timm.create_model("vit_small_patch16_224", num_classes=0)
    six_heads.load_state_dict(upstream.state_dict())
    assert relative_diff(features(six_heads, x), expected) > 0.05  # the defect: same weights, other features

    conversion = convert_file(path, tmp_path / "vits.pth", "timm", verify=True)
    assert conversion.backbone.arch == "vit_small_patch16_12h"
    sidecar = json.loads((tmp_path / "vits.pth.json").read_text())
    assert sidecar["arch"] == "vit_small_patch16_12h" and sidecar["timm_kwargs"] == {"num_heads": 12}
    model = timm.create_model(sidecar["timm_model"], num_classes=0, **sidecar["timm_kwargs"])
    model.load_state_dict(torch.load(tmp_path / "vits.pth", weights_only=True), strict=True)
    assert relative_diff(features(model, x), expected) < 1e-5
    registry = build_backbone(conversion.backbone.arch)
    registry.load_state_dict(conversion.backbone.state_dict)
    assert relative_diff(features(registry, x), expected) < 1e-5


def test_mocov3_vit_small_mmseg_file_says_12_heads_and_matches_upstream(mocov3_file, tmp_path):
    require("mmseg", "scripts/install_segmentation.sh")
    from resa_core.mmseg_import import import_mmseg

    import_mmseg()
    from mmengine.runner import load_checkpoint
    from mmseg.models.backbones import VisionTransformer as MMSegViT

    from converters.engines.mmseg_model import VIT_S16

    path, upstream = mocov3_file
    conversion = convert_file(path, tmp_path / "vits_mmseg.pth", "mmseg", verify=True)
    assert [engine.model for engine in conversion.verify.engines] == [
        "MMSegmentation VisionTransformer ViT-S/16 num_heads=12"]
    meta = torch.load(tmp_path / "vits_mmseg.pth", weights_only=True)["meta"]
    assert meta["mmseg_backbone"] == {"type": "VisionTransformer", "num_heads": 12}
    model = MMSegViT(**{**VIT_S16, "num_heads": meta["mmseg_backbone"]["num_heads"]})
    load_checkpoint(model, str(tmp_path / "vits_mmseg.pth"), map_location="cpu", strict=True)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    model.eval()  # mmseg's VisionTransformer.train returns None: no chaining
    with torch.no_grad():
        got = model(x)[-1]
        tokens = upstream.forward_features(x)[:, 1:]  # timm: final-norm tokens, the cls token first
    expected = tokens.transpose(1, 2).reshape(1, 384, 14, 14)
    assert relative_diff(got, expected) < 1e-5


# ---------------------------------------------------------------- item 2: solo-learn's CIFAR stem, padding=2
def solo_learn_cifar_resnet18(seed: int) -> nn.Module:
    """vturrisi/solo-learn ``solo/methods/base.py`` ``BaseMethod.__init__`` on cifar10/cifar100: torchvision
    resnet18, ``fc = Identity``, ``conv1 = Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)``,
    ``maxpool = Identity`` (``BaseMomentumMethod`` builds ``momentum_backbone`` the same way)."""
    model = resnet18()
    model.fc = nn.Identity()
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
    model.maxpool = nn.Identity()
    return randomise(model, seed)


def test_solo_learn_cifar_checkpoint_keeps_its_padding_2_stem(tmp_path):
    online, momentum = solo_learn_cifar_resnet18(3), solo_learn_cifar_resnet18(4)
    path = tmp_path / "byol-cifar10-ep=999.ckpt"
    # A Lightning checkpoint's state_dict of the method module (hyper_parameters dropped: OmegaConf, refused).
    torch.save({"epoch": 999, "global_step": 195000, "pytorch-lightning_version": "2.0.7", "state_dict": {
        **prefixed("backbone.", online.state_dict()), **prefixed("momentum_backbone.", momentum.state_dict()),
        "projector.0.weight": torch.randn(16, 512), "classifier.weight": torch.randn(10, 512)}}, path)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    expected = features(momentum, x)

    conversion = convert_file(path, tmp_path / "r18.pth", "torchvision", verify=True)
    assert (conversion.backbone.source_format, conversion.backbone.arch) == ("solo_learn", "resnet18_cifar_pad2")
    written = read_backbone(tmp_path / "r18.pth")  # the torchvision file + sidecar, as downstream reads it
    model = build_backbone(written.arch)
    model.load_state_dict(written.state_dict)
    assert relative_diff(features(model, x), expected) < 1e-5
    ours = build_backbone("resnet18_cifar")  # padding=1: winci-ai/resa_cifar src/model.py get_encoder
    ours.load_state_dict(written.state_dict)
    assert ours.conv1.padding == (1, 1) and relative_diff(features(ours, x), expected) > 0.05

    timm_conversion = convert_file(path, tmp_path / "r18_timm.pth", "timm", verify=True)
    assert [engine.model for engine in timm_conversion.verify.engines] == ["timm resnet18"]


# ---------------------------------------------------------------- item 3: lightly's benchmark checkpoints
def lightly_benchmark(partner: str) -> tuple[dict, nn.Module, nn.Module]:
    """lightly-ai/lightly ``benchmarks/imagenet/resnet50/{byol,mocov2,dino}.py``: ``backbone`` is torchvision's
    ResNet with ``fc = Identity`` (resnet18 here for size: same key names), ``partner`` its deepcopy, and an
    ``online_classifier``. Returns (Lightning checkpoint, backbone, partner)."""
    backbone = randomise(resnet18(), 5)
    backbone.fc = nn.Identity()
    other = randomise(copy.deepcopy(backbone), 6)
    state = {**prefixed("backbone.", backbone.state_dict()), **prefixed(f"{partner}.", other.state_dict()),
             "projection_head.layers.0.weight": torch.randn(16, 512),
             "online_classifier.classification_head.weight": torch.randn(10, 512)}
    checkpoint = {"epoch": 100, "global_step": 1000, "pytorch-lightning_version": "2.1.0", "state_dict": state,
                  "hyper_parameters": {"batch_size_per_device": 128, "num_classes": 1000}}
    return checkpoint, backbone, other


@pytest.mark.parametrize(("partner", "default", "backbone_role", "partner_role"), [
    ("teacher_backbone", "momentum", "online", "momentum"),  # byol.py: update_momentum(backbone, teacher_backbone)
    ("key_backbone", "online", "online", "momentum"),  # mocov2.py: key encoder = EMA; MoCo default: query
    ("student_backbone", "teacher", "teacher", "student"),  # dino.py: update_momentum(student_backbone, backbone)
])
def test_lightly_benchmark_checkpoints_name_their_encoders(partner, default, backbone_role, partner_role, tmp_path):
    checkpoint, backbone, other = lightly_benchmark(partner)
    path = tmp_path / "epoch=99-step=1000.ckpt"
    torch.save(checkpoint, path)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    expected = {backbone_role: features(backbone, x), partner_role: features(other, x)}
    model = build_backbone("resnet18")
    for source in ("auto", "lightly"):  # detected, and named with --from
        read = read_backbone(path, source=source)
        assert (read.source_format, read.encoder) == ("lightly", default)
        not_taken = partner if default == backbone_role else "backbone"
        assert f"not this encoder: {not_taken}.* (" in read.coverage.summary()
        for role in (backbone_role, partner_role):
            chosen = read_backbone(path, source=source, encoder=role)
            model.load_state_dict(chosen.state_dict)
            assert chosen.encoder == role and relative_diff(features(model, x), expected[role]) < 1e-5


# ---------------------------------------------------------------- item 4: real mmengine checkpoints
MMENGINE_RUN = textwrap.dedent('''
    """An MMSelfSup 1.x / MMPretrain-style algorithm (``backbone`` = open-mmlab ResNet) trained for one
    epoch by mmengine's Runner; its CheckpointHook calls Runner.save_checkpoint (meta, state_dict,
    message_hub, optimizer, param_schedulers). Also saves the backbone's stage-4 features on a probe."""
    import sys
    import torch
    from torch.utils.data import Dataset
    from resa_core.mmseg_import import import_mmseg
    import_mmseg()
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from mmseg.models.backbones import ResNet

    class Images(Dataset):
        metainfo = dict(classes=("a", "b"))
        def __len__(self):
            return 4
        def __getitem__(self, index):
            return dict(inputs=torch.randn(3, 32, 32), label=index % 2)

    class Algorithm(BaseModel):
        def __init__(self):
            super().__init__()
            self.backbone = ResNet(depth=18, out_indices=(3,))
            self.neck = torch.nn.Linear(512, 8)
        def forward(self, inputs, label=None, mode="loss"):
            x = torch.stack(inputs) if isinstance(inputs, list) else inputs
            return dict(loss=self.neck(self.backbone(x)[-1].mean((2, 3))).pow(2).mean())

    work_dir, probe_out = sys.argv[1], sys.argv[2]
    runner = Runner(
        model=Algorithm(), work_dir=work_dir,
        train_dataloader=dict(dataset=Images(), batch_size=2, sampler=dict(type="DefaultSampler", shuffle=False),
                              collate_fn=dict(type="default_collate")),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01, momentum=0.9)),
        param_scheduler=dict(type="MultiStepLR", milestones=[1]),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)))
    runner.train()
    backbone = runner.model.backbone
    backbone.eval()  # mmseg ResNet.train returns None: no chaining
    probe = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.save({"probe": probe, "stage4": backbone(probe)[-1]}, probe_out)
''')


@pytest.mark.slow
def test_real_mmengine_checkpoint_with_message_hub_converts(tmp_path):
    require("mmseg", "scripts/install_segmentation.sh")
    script = tmp_path / "run.py"
    script.write_text(MMENGINE_RUN)
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "work"), str(tmp_path / "probe.pt")],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    path = tmp_path / "work" / "epoch_1.pth"
    hub = load_torch(path)["message_hub"]
    buffer = hub["log_scalars"]["train/loss"]
    assert buffer.stands_for == "mmengine.logging.history_buffer.HistoryBuffer" and len(buffer.state["_log_history"])

    conversion = convert_file(path, tmp_path / "r18.pth", "torchvision", verify=True)
    assert (conversion.backbone.source_format, conversion.backbone.arch) == ("mmselfsup", "resnet18")
    reference = torch.load(tmp_path / "probe.pt", weights_only=True)
    model = build_backbone("resnet18").eval()
    model.load_state_dict(conversion.backbone.state_dict)
    with torch.no_grad():
        x = model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(reference["probe"])))))
        stage4 = model.layer4(model.layer3(model.layer2(x)))
    assert relative_diff(stage4, reference["stage4"]) < 1e-5


class _GetattrOnNamespace:
    """Pickles as ``getattr(argparse.Namespace, '__init__')``: what a hostile file would do with getattr."""

    def __reduce__(self):
        return getattr, (argparse.Namespace, "__init__")


def test_getattr_in_a_torch_file_is_refused_except_on_stand_ins(tmp_path):
    path = tmp_path / "hostile.pth"
    torch.save({"state_dict": {}, "x": _GetattrOnNamespace()}, path)
    with pytest.raises(UserError, match="hostile.pth: not a readable PyTorch file"):
        load_torch(path)


# ---------------------------------------------------------------- item 5: DINO with submitit; pre-0.4.1 files
def test_dino_checkpoint_from_run_with_submitit_converts(tmp_path):
    """facebookresearch/dino ``main_dino.py`` ``train_dino`` saves ``{'student', 'teacher', 'optimizer', 'epoch',
    'args', 'dino_loss'}``; ``run_with_submitit.py`` ``Trainer._setup_gpu_args`` sets ``args.output_dir`` to a
    ``pathlib.Path``. A torchvision ResNet (``main_dino.py``: ``torchvision_models.__dict__[args.arch]()``;
    ``utils.MultiCropWrapper`` sets its ``fc`` to Identity) is DDP-wrapped in student and teacher (it has BatchNorm)."""
    teacher, student = randomise(resnet18(), 7), randomise(resnet18(), 8)
    teacher.fc = student.fc = nn.Identity()
    head = {"head.mlp.0.weight": torch.randn(16, 512), "head.last_layer.weight_g": torch.randn(1, 16)}
    args = argparse.Namespace(arch="resnet18", output_dir=pathlib.Path("/checkpoint/user/experiments/1234"),
                              job_dir=pathlib.Path("/checkpoint/user/experiments/%j"), out_dim=16)
    path = tmp_path / "checkpoint.pth"
    torch.save({"student": prefixed("module.", {**prefixed("backbone.", student.state_dict()), **head}),
                "teacher": prefixed("module.", {**prefixed("backbone.", teacher.state_dict()), **head}),
                "optimizer": {"state": {}, "param_groups": []}, "epoch": 100, "args": args,
                "dino_loss": {"center": torch.randn(1, 16)}}, path)
    assert str(load_torch(path)["args"].output_dir) == "/checkpoint/user/experiments/1234"
    conversion = convert_file(path, tmp_path / "r18.pth", "torchvision", verify=True)
    assert (conversion.backbone.source_format, conversion.backbone.encoder) == ("dino", "teacher")
    model = build_backbone("resnet18")
    model.load_state_dict(conversion.backbone.state_dict)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert relative_diff(features(model, x), features(teacher, x)) < 1e-5


def _without_num_batches_tracked(state: dict) -> dict:
    return {key: value for key, value in state.items() if not key.endswith("num_batches_tracked")}


def test_state_dict_without_num_batches_tracked_converts_as_load_state_dict_accepts_it(tmp_path):
    """BatchNorm's ``num_batches_tracked`` buffer came with PyTorch 0.4.1; a file saved before has none, e.g.
    torchvision's own ``resnet50-19c8e357.pth``. ``load_state_dict(strict=True)`` fills it with 0
    (torch/nn/modules/batchnorm.py ``_NormBase._load_from_state_dict``, state_dict version < 2)."""
    upstream = randomise(resnet18(), 9)
    upstream.fc = nn.Identity()
    old = _without_num_batches_tracked(upstream.state_dict())
    strict = resnet18()
    strict.fc = nn.Identity()
    strict.load_state_dict(old, strict=True)  # PyTorch itself accepts the file
    torch.save(old, tmp_path / "resnet18-old.pth")
    conversion = convert_file(tmp_path / "resnet18-old.pth", tmp_path / "r18.pkl", "detectron2", verify=True)
    backbone = conversion.backbone
    assert "filled with 0 (a pre-0.4.1 file without them): 20 num_batches_tracked" in backbone.coverage.summary()
    assert backbone.state_dict["bn1.num_batches_tracked"].item() == 0
    model = build_backbone("resnet18")
    model.load_state_dict(backbone.state_dict)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert relative_diff(features(model, x), features(upstream, x)) < 1e-5
    assert conversion.verify.max_abs_feature_diff <= FEATURE_TOLERANCE


def test_a_file_missing_only_some_num_batches_tracked_is_still_refused(tmp_path):
    state = resnet18().state_dict()
    del state["layer1.0.bn1.num_batches_tracked"]
    torch.save(state, tmp_path / "damaged.pth")
    with pytest.raises(UserError, match="missing: layer1.0.bn1.num_batches_tracked"):
        read_backbone(tmp_path / "damaged.pth")


# ---------------------------------------------------------------- the archs only a source format names
def test_shape_twins_share_their_base_shapes_and_a_bare_file_reads_as_the_base(tmp_path):
    """``vit_small_patch16_12h`` / ``resnet18_cifar_pad2`` cannot be told from their base by the weights, so a
    bare file resolves to the base (unchanged behaviour) and only mocov3 / solo_learn / a sidecar names them."""
    from converters.arch_inference import SHAPE_TWINS
    from converters.coverage import expected_shapes

    for twin, base in SHAPE_TWINS.items():
        assert expected_shapes(twin) == expected_shapes(base)
        torch.save(build_backbone(twin).state_dict(), tmp_path / f"{twin}.pth")
        assert read_backbone(tmp_path / f"{twin}.pth").arch == base
        (tmp_path / f"{twin}.pth.json").write_text(json.dumps({"arch": twin}))
        assert read_backbone(tmp_path / f"{twin}.pth").arch == twin
