"""The projector MLP of a resa-bench pretrain checkpoint, rebuilt from its weights (for clustering analysis).

The checkpoint (docs/contracts.md §1) stores the method's full state in ``train_state.model``;
the projector's tensors are ``projector.<i>.*`` (and ``momentum_projector.<i>.*`` for methods
with a momentum branch). The module layout is read off the keys, as data: index ``i`` with
``running_mean`` is a BatchNorm1d (affine when it has ``weight``), a 2-D ``weight`` is a Linear,
and an index without tensors is the activation, ReLU when the MLP has BatchNorm and GELU when
it has none (pretrain/heads.py: ``bn_relu`` vs BN-free ``gelu`` heads). The projector matching
the evaluated encoder is used: the momentum one where the checkpoint has a momentum encoder
(the encoder converters.read_backbone picks by default), the online one otherwise.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from resa_core.errors import UserError


def _layer(prefix: str, index: int, tensors: dict[str, torch.Tensor], activation: type[nn.Module]) -> nn.Module:
    params = {key[len(f"{prefix}{index}."):]: value for key, value in tensors.items()
              if key.startswith(f"{prefix}{index}.")}
    if "running_mean" in params:
        layer = nn.BatchNorm1d(len(params["running_mean"]), affine="weight" in params)
    elif "weight" in params and params["weight"].ndim == 2:
        layer = nn.Linear(params["weight"].shape[1], params["weight"].shape[0], bias="bias" in params)
    elif not params:
        return activation()
    else:
        raise UserError(f"projector layer {prefix}{index} has unrecognised tensors {sorted(params)}")
    layer.load_state_dict(params, strict=True)
    return layer


def projector_from_checkpoint(path: str | Path) -> nn.Sequential | None:
    """The projector of a resa-bench checkpoint in eval mode, or ``None`` for any other file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a torch file (e.g. a Detectron2 .pkl): it has no projector for us
        return None
    model = state.get("train_state", {}).get("model", {}) if isinstance(state, dict) else {}
    prefix = "momentum_projector." if "momentum_encoder" in state else "projector."
    tensors = {key: value for key, value in model.items() if key.startswith(prefix)}
    if not tensors:
        return None
    indices = {int(key[len(prefix):].split(".")[0]) for key in tensors}
    activation = nn.ReLU if any(key.endswith("running_mean") for key in tensors) else nn.GELU
    layers = [_layer(prefix, index, tensors, activation) for index in range(max(indices) + 1)]
    return nn.Sequential(*layers).eval().requires_grad_(False)


def projector_layers(projector: nn.Sequential, encodings: torch.Tensor) -> dict[str, torch.Tensor]:
    """``hidden0``, ``hidden1``, ... (each hidden Linear's block output, after its activation; ReSA
    Figure 4's P0, P1) and ``embedding`` (the projector output Z) of the given encodings."""
    outputs, hidden, x = {}, 0, encodings.float()
    with torch.no_grad():
        for position, layer in enumerate(projector):
            x = layer(x)
            if isinstance(layer, (nn.ReLU, nn.GELU)) and position < len(projector) - 1:
                outputs[f"hidden{hidden}"] = x.clone()
                hidden += 1
    outputs["embedding"] = x
    return outputs
