"""torchvision ResNets as feature encoders (``fc`` replaced by identity, key names unchanged).

``resnet18`` / ``resnet50`` keep torchvision's 7x7 stride-2 stem and max-pool, so their weights
map one-to-one onto Detectron2's and MMSegmentation's ResNets. ``resnet18_cifar`` is the
CIFAR variant used by the ReSA paper for 32 px inputs (Table 8 rows CIFAR-10/100): a 3x3 stride-1
``conv1`` with ``padding=1`` and no max-pool, as the authors' winci-ai/resa_cifar ``src/model.py``
``get_encoder`` builds it. ``resnet18_cifar_pad2`` is solo-learn's CIFAR stem
(vturrisi/solo-learn ``solo/methods/base.py`` ``BaseMethod.__init__``: the same conv with
``padding=2``, so a 32 px input gives 34 px maps); its weights have the same shapes, so only a
source format that knows it (the solo-learn reader) names it.

:func:`zero_init_residual` is a pretraining-time initialisation (the ReSA authors' choice per
arch, ``model.zero_init_residual`` in the pretrain presets); it changes no key or shape.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.models.resnet import BasicBlock, Bottleneck

from pretrain.models import register_arch


def _encoder(model: nn.Module) -> nn.Module:
    model.fc = nn.Identity()
    return model


@register_arch("resnet18", family="resnet", feature_dim=512)
def build_resnet18() -> nn.Module:
    return _encoder(resnet18())


@register_arch("resnet18_cifar", family="resnet", feature_dim=512, standard_stem=False)
def build_resnet18_cifar() -> nn.Module:
    model = resnet18()
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return _encoder(model)


@register_arch("resnet18_cifar_pad2", family="resnet", feature_dim=512, standard_stem=False)
def build_resnet18_cifar_pad2() -> nn.Module:
    model = resnet18()
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
    model.maxpool = nn.Identity()
    return _encoder(model)


@register_arch("resnet50", family="resnet", feature_dim=2048)
def build_resnet50() -> nn.Module:
    return _encoder(resnet50())


def zero_init_residual(model: nn.Module) -> nn.Module:
    """Zero the last BN scale of every residual branch, in place (each block starts as the identity).

    torchvision's ``zero_init_residual=True`` (Goyal et al. 2017), which the ReSA authors pass in
    winci-ai/resa ``src/model.py`` line 40 (``src/resnet.py`` lines 222-227: ``bn3`` of a
    Bottleneck, ``bn2`` of a BasicBlock).
    """
    for module in model.modules():
        if isinstance(module, Bottleneck):
            nn.init.zeros_(module.bn3.weight)
        elif isinstance(module, BasicBlock):
            nn.init.zeros_(module.bn2.weight)
    return model
