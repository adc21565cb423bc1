"""DSA as a plug-in regulariser on any registered method: ``python -m pretrain <preset> dsa.enabled=true``.

Eq. 17 of the DSA paper: ``L = L_ssl + nu * L_AM^S + upsilon * L_con``, where ``L_ssl`` is the
method's own loss, untouched (the equations are :mod:`pretrain.losses.dsa`). :func:`attach` puts a
:class:`DSARegulariser` on the method as the submodule ``dsa`` (so its similarity network is in the
checkpoint's state_dict and a resume is exact) and adds its term with two forward hooks, so no
method file changes:

* a hook on ``method.encoder`` records the backbone features ``z = f(x)`` of the method's own
  forward (Section V: "project each sample ... via f"); the first 2B rows, in call order, are the two
  large views (every method encodes view 1 then view 2, one call each or one concatenated call);
* a hook on the method adds ``nu * L_AM^S + upsilon * L_con`` to the returned loss and its two
  parts to the logs (``dsa_am``, ``dsa_con``).

The regulator couples the batch: the features of both views are gathered over the ranks with
gradient (view 1 of all ranks, then view 2: the single-process row order) and every rank computes
the same global terms, as the gathered losses here do (``pretrain.distributed.gather``).
:func:`param_groups` gives the optimizer the similarity network beside the method's groups.

Choices where the paper is silent (Section V/VI-B give no values for them):

* features: L2-normalised before ``f_s`` and the distances of Eq. 10 (as the paper's own feature
  analysis, Section IV, normalises embeddings), so ``||z_i - z_j||^2 <= 4`` and Eq. 10's exponent
  stays bounded at any feature scale; the auxiliary features likewise;
* ``f_s``: Linear(2D, ``dsa.hidden_dim``) - ReLU - Linear(1) ("a two-layer MLP with ReLU", Section
  V-A), evaluated on all (2N)^2 concatenated pairs as ``W_a z_i + W_b z_j`` (the same first layer);
* ``f_aux``: the paper's default is a frozen pre-trained CLIP image encoder (Section VI-F c, Table
  X: any pre-trained extractor, even SIFT, does as well). Nothing is downloaded here, so
  ``dsa.aux_encoder: input`` is the input space itself (each view average-pooled to
  ``dsa.aux_pool`` squared pixels: Eq. 11's "similarity prior of the samples in the original input
  space"), or a path to a torchvision ResNet state_dict (``--to torchvision`` of this suite, or
  torchvision's own file) of arch ``dsa.aux_arch``, frozen and in eval mode;
* tau of Eq. 10, 11 and 16 (one symbol in the paper, no value): ``dsa.temperature``, 1.0 on unit-norm features.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pretrain import distributed
from pretrain.losses.dsa import dsa_regulariser
from pretrain.precision import at_least_float32
from resa_core.errors import UserError

DEFAULTS = {
    "enabled": False,
    "alpha": 1.0,  # threshold of Eq. 10/16 (Section VI-B: alpha = 1.0)
    "nu": 0.1,  # weight of L_AM^S in Eq. 17 (Section VI-B; Fig. 4a optimum 1e-1)
    "upsilon": 100.0,  # weight of L_con in Eq. 17 (Section VI-B; Fig. 4b optimum 1e2)
    "knn": 20,  # eta, neighbours of the connectivity score, Eq. 14 (Section VI-B: eta = 20)
    "score": True,  # False: Eq. 10 unweighted (Table IX "w/o sc")
    "temperature": 1.0,  # tau of Eq. 10, 11 and 16 (no value in the paper; features are unit-norm)
    "hidden_dim": 256,  # f_s hidden width (Section V-A: two-layer MLP; width not stated)
    "aux_encoder": "input",  # input | path to a torchvision ResNet state_dict (paper default: CLIP, Table X)
    "aux_arch": "resnet18",  # torchvision arch of a aux_encoder checkpoint
    "aux_pool": 8,  # input aux: views average-pooled to aux_pool x aux_pool
}
AUX_ARCHS = ("resnet18", "resnet34", "resnet50")


def check_config(config: dict, source: str) -> None:
    """Raise :class:`UserError` for DSA settings that cannot run."""
    cfg = config["dsa"]
    if not cfg["enabled"]:
        return
    samples = 2 * config["optim"]["batch_size"]
    if not 1 <= cfg["knn"] < samples:
        raise UserError(f"{source}: dsa.knn = {cfg['knn']} needs 1 <= knn < the {samples} views of a global batch")
    if cfg["temperature"] <= 0:
        raise UserError(f"{source}: dsa.temperature = {cfg['temperature']} must be > 0")
    if cfg["aux_arch"] not in AUX_ARCHS:
        raise UserError(f"{source}: dsa.aux_arch = {cfg['aux_arch']!r}; expected one of {AUX_ARCHS}")
    if cfg["aux_encoder"] != "input" and not Path(cfg["aux_encoder"]).is_file():
        raise UserError(f"{source}: dsa.aux_encoder = {cfg['aux_encoder']!r} is neither 'input' nor a file")


class SimilarityNetwork(nn.Module):
    """``f_s``: Linear(2D, H) - ReLU - Linear(H, 1) on ``cat(z_i, z_j)`` (DSA Section V-A)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.first = nn.Linear(2 * dim, hidden)
        self.second = nn.Linear(hidden, 1)

    def pair_scores(self, z: torch.Tensor) -> torch.Tensor:
        """``[f_s(cat(z_i, z_j))]_ij`` for all pairs, the first layer split as ``W_a z_i + W_b z_j + b``."""
        dim = z.shape[1]
        anchor = z @ self.first.weight[:, :dim].T + self.first.bias
        other = z @ self.first.weight[:, dim:].T
        return self.second(torch.relu(anchor[:, None, :] + other[None, :, :])).squeeze(-1)


class InputFeatures(nn.Module):
    """The input space as the auxiliary extractor: each view average-pooled to ``size`` x ``size``."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, self.size).flatten(1)


def build_aux(cfg: dict) -> nn.Module:
    """``f_aux``, frozen: the pooled input, or a torchvision ResNet from a state_dict file (its ``fc`` dropped)."""
    if cfg["aux_encoder"] == "input":
        return InputFeatures(cfg["aux_pool"])
    import torchvision

    model = getattr(torchvision.models, cfg["aux_arch"])()
    try:
        state = torch.load(cfg["aux_encoder"], map_location="cpu", weights_only=True)
    except Exception as err:  # garbage bytes, a pickle of more than tensors
        raise UserError(f"dsa.aux_encoder {cfg['aux_encoder']}: not a readable state_dict "
                        f"({type(err).__name__})") from None
    missing, _ = model.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
    if [k for k in missing if not k.startswith("fc.")]:
        raise UserError(f"dsa.aux_encoder {cfg['aux_encoder']}: not a torchvision {cfg['aux_arch']} state_dict "
                        f"(missing {missing[:3]})")
    model.fc = nn.Identity()
    return model.requires_grad_(False).eval()


class DSARegulariser(nn.Module):
    """The arranging and scoring modules of DSA with their own parameters (``f_s``) and frozen ``f_aux``."""

    def __init__(self, cfg: dict, feature_dim: int):
        super().__init__()
        self.cfg = cfg
        self.similarity = SimilarityNetwork(feature_dim, cfg["hidden_dim"])
        self.aux = build_aux(cfg)

    def train(self, mode: bool = True):
        """``f_aux`` stays in eval mode (frozen BN statistics) whatever the method's mode."""
        super().train(mode)
        self.aux.eval()
        return self

    def forward(self, features1: torch.Tensor, features2: torch.Tensor, view1: torch.Tensor,
                view2: torch.Tensor) -> tuple[torch.Tensor, dict]:
        cfg = self.cfg
        with torch.no_grad():
            aux = torch.cat([distributed.gather(self.aux(v), with_grad=False) for v in (view1, view2)])
        with torch.autocast(features1.device.type, enabled=False):  # under AMP too: fp32 (fp64 runs stay fp64)
            z = torch.cat([distributed.gather(at_least_float32(f)) for f in (features1, features2)])
            z = F.normalize(z, dim=1)
            aux = F.normalize(at_least_float32(aux), dim=1)
            return dsa_regulariser(z, self.similarity.pair_scores(z), aux, alpha=cfg["alpha"], nu=cfg["nu"],
                                   upsilon=cfg["upsilon"], knn=cfg["knn"], temperature=cfg["temperature"],
                                   use_score=cfg["score"])


def attach(method: nn.Module, config: dict) -> nn.Module:
    """Give ``method`` the DSA regulariser when ``dsa.enabled``: submodule ``dsa`` and the two hooks."""
    if not config["dsa"]["enabled"]:
        return method
    method.dsa = DSARegulariser(config["dsa"], method.encoder.feature_dim)
    recorded: list[torch.Tensor] | None = None

    def record_features(module, args, output):
        if recorded is not None:
            recorded.append(output)

    def start(module, args):
        nonlocal recorded
        recorded = []

    def add_regulariser(module, args, output):
        nonlocal recorded
        features, recorded = torch.cat(recorded), None
        loss, logs = output
        local = args[0].shape[0]
        extra, parts = module.dsa(features[:local], features[local:2 * local], args[0], args[1])
        return loss + extra, {**logs, **{name: value.item() for name, value in parts.items()}}

    method.encoder.register_forward_hook(record_features)
    method.register_forward_pre_hook(start)
    method.register_forward_hook(add_regulariser)
    return method


def param_groups(method: nn.Module) -> list[dict]:
    """The method's optimizer groups, plus the similarity network ``f_s`` when DSA is attached."""
    groups = method.param_groups()
    if not hasattr(method, "dsa"):
        return groups
    own = list(method.dsa.similarity.parameters())
    taken = {id(p) for p in own}  # Method.param_groups' default lists every parameter, f_s included
    groups = [{**group, "params": [p for p in group["params"] if id(p) not in taken]} for group in groups]
    return [*(group for group in groups if group["params"]), {"params": own}]
