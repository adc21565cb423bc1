"""MSN (Assran et al., ECCV 2022) and PMSN (Assran et al., ICLR 2023): masked siamese networks with a cluster prior.

``method=msn``: the uniform prior (MSN's me-max regulariser); ``method=pmsn``: the power-law
prior ``p_PL(tau)`` of PMSN Eq. 9 with ``loss.prior_tau`` (the key the other methods' priors use;
tau = 0.25, PMSN Sec. 5.2 / Table 3; 0 gives MSN). Loss: :mod:`pretrain.losses.msn`. Views (facebookresearch/msn
``src/msn_train.py::train_step``, commit 4388dc1): view 1 is the target, encoded by the EMA
target encoder and projector without masking; view 2 is the anchor, encoded with a random
fraction ``loss.mask_ratio`` of its patch tokens dropped (``deit.py::forward_features``
``patch_drop``: ``floor(N (1 - ratio))`` patches kept, the [CLS] token always); the small
multi-crop views (``augment.num_small_crops``) are the focal anchors, unmasked (``patch_drop``
applies to the first crop size only). Anchors: masked view, then the focal views concatenated
(one head batch per crop size, as ``deit.py::forward``). Every anchor predicts the target.

Architecture (``msn_train.py::init_model``, ``use_bn`` true, ``use_pred_head`` false): ViT
[CLS] output, projection head Linear-BN-GELU-Linear-BN-GELU-Linear (hidden
``model.projector_hidden_dim`` 2048, output ``model.projector_out_dim`` 256), trunc-normal(0.02)
weights and zero biases; ``loss.num_prototypes`` prototypes (K x d), uniform(+-1/sqrt(d)) at
start, shared by anchors and target, trained without weight decay (``init_opt``'s third group).
EMA target of encoder and head, momentum 0.996 -> 1 increased linearly over 1.25 x the run
(``momentum_scheduler``).

Deliberate differences: masks are drawn per sample from a generator seeded by ``(seed, step)``
over the global batch (the reference draws one permutation per batch on each GPU), so the
masks do not depend on the rank count and replay after a resume; the prototype gradient is
averaged over ranks by DDP (the reference sums it, ``AllReduceSum``: a world-size larger step),
so N ranks give the single-process gradient; the ViT and lr schedule are the engine's (MoCo v3
init, cosine over the run instead of over 1.25 x the run); no weight-decay schedule (the
reference raises it 0.04 -> 0.4 with a cosine; ``optim.weight_decay`` stays constant here);
``optim.clip_grad`` clips the norm of all parameters together, prototypes included (the reference
clips the encoder and head only).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pretrain import distributed
from pretrain.losses.msn import SHARPEN, SINKHORN_ITERS, TEMPERATURE, msn_loss
from pretrain.losses.priors import power_law_prior
from pretrain.methods import register_method
from pretrain.methods.wmse import StepSeededDraws
from pretrain.models import arch_spec
from resa_core.errors import UserError

MOMENTUM_HORIZON = 1.25  # msn_train.py: momentum_scheduler runs over ipe * num_epochs * 1.25 steps


def msn_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """msn_train.py::init_model ``fc`` with ``use_bn``: fc1-bn1-gelu1-fc2-bn2-gelu2-fc3, trunc-normal 0.02."""
    head = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.GELU(),
                         nn.Linear(hidden_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.GELU(),
                         nn.Linear(hidden_dim, out_dim))
    for layer in head:
        if isinstance(layer, nn.Linear):
            nn.init.trunc_normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)
    return head


def kept_patches(generator: torch.Generator, local_batch: int, num_patches: int, mask_ratio: float) -> torch.Tensor:
    """This rank's (B_local x n_keep) indices of kept patches, drawn for the whole global batch."""
    keep = math.floor(num_patches * (1.0 - mask_ratio))  # deit.py: T_H = floor((N) * patch_keep)
    world, rank = distributed.world_size(), distributed.rank()
    noise = torch.rand(local_batch * world, num_patches, generator=generator)
    return noise.argsort(dim=1)[rank * local_batch:(rank + 1) * local_batch, :keep].sort(dim=1).values


def masked_vit_features(vit: nn.Module, images: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """timm ``VisionTransformer.forward`` with only the ``keep`` patch tokens after the position embedding."""
    x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))
    if keep is not None:
        prefix = vit.num_prefix_tokens
        index = keep.to(x.device)[..., None].expand(-1, -1, x.shape[-1])
        x = torch.cat([x[:, :prefix], torch.gather(x[:, prefix:], 1, index)], dim=1)
    return vit.forward_head(vit.norm(vit.blocks(x)))


@register_method("msn")
class MSN(StepSeededDraws):
    # PMSN App. D.1 (MSN, ViT-B/16): 1024 prototypes, entropy coefficient 1.0, temperature 0.1, sharpening 0.25;
    # mask_ratio 0.15: msn_vits16.yaml data.patch_drop (= PMSN App. E.1.2); use_sinkhorn: msn_vits16.yaml.
    loss_defaults = {"num_prototypes": 1024, "temperature": TEMPERATURE, "sharpen": SHARPEN, "prior_weight": 1.0,
                     "mask_ratio": 0.15, "use_sinkhorn": True, "sinkhorn_iters": SINKHORN_ITERS}
    default_views = "symmetric"  # data_manager.py::make_transforms: the same transform for every random view
    supports_multicrop = True
    momentum_pairs = (("encoder", "momentum_encoder"), ("projector", "momentum_projector"))

    @classmethod
    def check_config(cls, config: dict, source: str) -> None:
        cfg = config["loss"]
        if arch_spec(config["arch"]).family != "vit":
            raise UserError(f"{source}: method {config['method']} masks patch tokens and needs a ViT arch, "
                            f"not {config['arch']}")
        if not 0.0 <= cfg["mask_ratio"] < 1.0:
            raise UserError(f"{source}: loss.mask_ratio = {cfg['mask_ratio']} must lie in [0, 1)")
        for key in ("temperature", "sharpen"):
            if cfg[key] <= 0:
                raise UserError(f"{source}: loss.{key} = {cfg[key]} must be > 0")
        if cfg.get("prior_tau", 0.0) < 0:
            raise UserError(f"{source}: loss.prior_tau = {cfg['prior_tau']} must be >= 0")

    def prior_values(self) -> torch.Tensor:
        """The cluster prior: uniform for MSN."""
        return power_law_prior(self.loss_cfg["num_prototypes"], 0.0)

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg, self.loss_cfg = config["model"], dict(config["loss"])
        self.encoder = encoder
        out_dim = model_cfg["projector_out_dim"]
        self.projector = msn_head(encoder.feature_dim, model_cfg["projector_hidden_dim"], out_dim)
        bound = (1.0 / out_dim) ** 0.5  # msn_train.py: uniform_(prototypes, -sqrt(1/d), sqrt(1/d))
        self.prototypes = nn.Parameter(torch.empty(self.loss_cfg["num_prototypes"], out_dim).uniform_(-bound, bound))
        self.register_buffer("prior", self.prior_values(), persistent=False)
        self.setup_momentum(config)
        self.setup_draws(config)

    def param_groups(self) -> list[dict]:
        """Encoder and head, then the prototypes without weight decay (msn_train.py::init_opt)."""
        rest = [p for name, p in self.named_parameters() if p.requires_grad and name != "prototypes"]
        return [{"params": rest}, {"params": [self.prototypes], "weight_decay": 0.0}]

    def forward(self, *views: torch.Tensor) -> tuple[torch.Tensor, dict]:
        cfg = self.loss_cfg
        target_view, anchor_view, focal = views[0], views[1], views[2:]
        keep = None
        if cfg["mask_ratio"] > 0:
            patches = math.prod(self.encoder.patch_embed.dynamic_feat_size(anchor_view.shape[-2:]))
            keep = kept_patches(self.generator(), anchor_view.shape[0], patches, cfg["mask_ratio"])
        anchors = [self.projector(masked_vit_features(self.encoder, anchor_view, keep))]
        if focal:
            anchors.append(self.projector(self.encoder(torch.cat(focal))))
        with torch.no_grad():
            target = self.momentum_projector(self.momentum_encoder(target_view))
        loss, logs = msn_loss(torch.cat(anchors), target, self.prototypes, self.prior, cfg["temperature"],
                              cfg["sharpen"], cfg["prior_weight"], cfg["use_sinkhorn"], cfg["sinkhorn_iters"])
        return loss, logs

    @torch.no_grad()
    def after_step(self, progress: float) -> dict:
        """The EMA with this step's momentum, then msn_train.py's linear schedule over 1.25 x the run."""
        logs = super().after_step(progress)
        self.momentum = self.momentum_base + (self.momentum_final - self.momentum_base) * progress / MOMENTUM_HORIZON
        return logs


@register_method("pmsn")
class PMSN(MSN):
    # PMSN Sec. 5.2 / Table 3: power-law prior with exponent tau = 0.25
    loss_defaults = {**MSN.loss_defaults, "prior_tau": 0.25}

    def prior_values(self) -> torch.Tensor:
        """PMSN Eq. 9's ``p_PL(tau)``, ``[p]_k ∝ k^-tau`` (Sec. 5.2)."""
        return power_law_prior(self.loss_cfg["num_prototypes"], self.loss_cfg["prior_tau"])
