"""Projector and predictor MLPs of ReSA (paper Appendix B.2 "Universal settings").

ConvNets: Linear-BN-ReLU hidden layers and a final affine-free BN on the embedding, as the
authors' ``src/model.py`` (winci-ai/resa) builds them; projector 3 layers, hidden 2048,
output 512; predictor 2 layers with the same hidden width.
"""

from __future__ import annotations

from torch import nn


def mlp(in_dim: int, hidden_dim: int, out_dim: int, layers: int, final_bn: bool) -> nn.Sequential:
    blocks: list[nn.Module] = []
    width = in_dim
    for _ in range(layers - 1):
        blocks += [nn.Linear(width, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
        width = hidden_dim
    blocks.append(nn.Linear(width, out_dim))
    if final_bn:
        blocks.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*blocks)


def build_projector(in_dim: int, model_cfg: dict) -> nn.Sequential:
    return mlp(in_dim, model_cfg["projector_hidden_dim"], model_cfg["projector_out_dim"],
               model_cfg["projector_layers"], final_bn=True)


def build_predictor(model_cfg: dict) -> nn.Sequential | None:
    if not model_cfg["predictor"]:
        return None
    out_dim = model_cfg["projector_out_dim"]
    return mlp(out_dim, model_cfg["projector_hidden_dim"], out_dim, layers=2, final_bn=False)
