"""Projector and predictor MLPs of ReSA (paper Appendix B.2 "Universal settings") and the baselines.

Projector: 3 layers, hidden 2048, output 512; predictor (optional, on for ImageNet): 2 layers
with the same hidden (``model.predictor_hidden_dim`` when set) and output width. ConvNets
(``bn_relu``): Linear-BN-ReLU hidden layers and a final affine-free BN on the embedding, as the
authors' ``src/model.py`` (winci-ai/resa) builds them. ViTs (``gelu``): no BN anywhere and GELU
activations, after DINO, so that ViT training is BN-free (B.2). The baselines build their own
heads from :func:`linear_mlp` (DINO's head is in ``pretrain/methods/dino.py``).
"""

from __future__ import annotations

from torch import nn

from pretrain.models import arch_spec


def head_style(config: dict) -> str:
    """``model.head``, with ``auto`` resolved from the arch family (ViT -> gelu, else bn_relu)."""
    style = config["model"]["head"]
    if style == "auto":
        style = "gelu" if arch_spec(config["arch"]).family == "vit" else "bn_relu"
    return style


def mlp(in_dim: int, hidden_dim: int, out_dim: int, layers: int, style: str, final_bn: bool) -> nn.Sequential:
    blocks: list[nn.Module] = []
    width = in_dim
    for _ in range(layers - 1):
        blocks.append(nn.Linear(width, hidden_dim))
        if style == "bn_relu":
            blocks += [nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
        else:
            blocks.append(nn.GELU())
        width = hidden_dim
    blocks.append(nn.Linear(width, out_dim))
    if final_bn and style == "bn_relu":
        blocks.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*blocks)


def build_projector(in_dim: int, config: dict) -> nn.Sequential:
    model_cfg = config["model"]
    return mlp(in_dim, model_cfg["projector_hidden_dim"], model_cfg["projector_out_dim"],
               model_cfg["projector_layers"], head_style(config), final_bn=True)


def build_predictor(config: dict) -> nn.Sequential | None:
    model_cfg = config["model"]
    if not model_cfg["predictor"]:
        return None
    out_dim = model_cfg["projector_out_dim"]
    hidden = model_cfg.get("predictor_hidden_dim") or model_cfg["projector_hidden_dim"]
    return mlp(out_dim, hidden, out_dim, 2, head_style(config), final_bn=False)


def linear_mlp(in_dim: int, hidden_dim: int, out_dim: int, layers: int, *, hidden_bn: bool, bias: bool = True,
               last_bias: bool = True, last_bn: bool = False) -> nn.Sequential:
    """The baselines' heads: ``layers`` Linear layers, ``[BN] + ReLU`` between them, optional affine-free BN last.

    SimCLR / MoCo v2+: ``hidden_bn=False`` (Linear-ReLU-Linear); BYOL: ``hidden_bn=True``; MoCo v3:
    ``bias=last_bias=False, last_bn=True`` (moco-v3 ``builder.py::_build_mlp``); SimSiam's projector
    ``layers=3, bias=last_bias=False, last_bn=True``.
    """
    blocks: list[nn.Module] = []
    width = in_dim
    for _ in range(layers - 1):
        blocks.append(nn.Linear(width, hidden_dim, bias=bias))
        if hidden_bn:
            blocks.append(nn.BatchNorm1d(hidden_dim))
        blocks.append(nn.ReLU(inplace=True))
        width = hidden_dim
    blocks.append(nn.Linear(width, out_dim, bias=last_bias))
    if last_bn:
        blocks.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*blocks)
