"""DeepCluster-v2 (Caron et al., NeurIPS 2020, Appendix A): k-means targets from a memory bank of embeddings.

Reference: facebookresearch/swav ``main_deepclusterv2.py`` (``train``, ``init_memory``,
``cluster_memory``), as solo-learn ``solo/methods/deepclusterv2.py`` + ``solo/utils/kmeans.py``
re-implement it. The loss and the k-means are :mod:`pretrain.losses.deepclusterv2`.

* Memory bank: for every sample seen this epoch, its dataset index (``memory_index``) and the
  L2-normalised projections of the crops in ``CROPS_FOR_ASSIGN`` (``memory``), written in batch
  order (the reference's ``start_idx`` cursor). Before the first step the engine fills it with
  one gradient-free pass over epoch 0's batches (:meth:`init_memory`, the reference's
  ``init_memory``).
* At the start of every epoch (the first forward with a new ``self.epoch``,
  ``cluster_memory``): for each head h with ``loss.num_prototypes[h]`` clusters, spherical k-means
  (``loss.kmeans_iters`` iterations) on crop ``h mod 2``'s memory, centroids initialised from
  random memory rows; the centroids become head h's prototypes, the assignments every sample's
  target under head h (-100, ignored, for samples not in the memory: the batches' remainder).
* Loss (``train``): cross-entropy at ``loss.temperature`` of every crop's prototype scores against
  its sample's target, averaged over heads. The prototypes get no gradient (the reference's
  ``freeze_prototypes_niters`` default 1e10; solo-learn sets ``requires_grad=False``).

Under DDP every rank keeps the whole memory bank (each step's projections and indices are
gathered), so rank 0's checkpoint holds it and a resume is exact; the k-means runs sharded as
the reference's: rank r clusters its 1/W of the memory rows, the per-cluster sums and counts are
all-reduced and the assignments gathered, which equals the single-process k-means.

Deliberate differences: the reference keeps 1/W of the bank per rank (saved per rank in
``mb<rank>.pth``), we replicate it (W x its memory); the initial centroids are memory rows drawn
by a generator seeded by ``(seed, epoch, head)`` (the reference: ``torch.randperm`` on rank 0,
broadcast), so every rank and every resume draws the same ones. solo-learn starts from a random
memory with every target -1 in epoch 0 (a NaN loss its fp16 GradScaler skips); we follow the
authors' ``init_memory``. Projector as both (Linear-BN-ReLU-Linear, then L2 normalisation:
``src/resnet50.py`` ``projection_head`` with ``normalize=True``). No online classifier.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pretrain import distributed
from pretrain.heads import linear_mlp
from pretrain.losses.deepclusterv2 import deepclusterv2_loss, spherical_kmeans
from pretrain.methods import register_method
from pretrain.methods.base import Method
from resa_core.errors import UserError

CROPS_FOR_ASSIGN = (0, 1)  # main_deepclusterv2.py --crops_for_assign default: the two large crops


@register_method("deepclusterv2")
class DeepClusterV2(Method):
    # main_deepclusterv2.py --temperature 0.1, --nmb_prototypes 3000 3000 3000, cluster_memory's
    # nmb_kmeans_iters=10; the same defaults in solo-learn solo/methods/deepclusterv2.py
    loss_defaults = {"temperature": 0.1, "num_prototypes": [3000, 3000, 3000], "kmeans_iters": 10}
    default_views = "symmetric"  # solo-learn scripts/pretrain/{cifar,imagenet-100}/deepclusterv2.yaml
    supports_multicrop = True  # main_deepclusterv2.py --nmb_crops: every crop is trained on its sample's target
    fills_memory = True  # main_deepclusterv2.py init_memory before the first epoch

    @classmethod
    def check_config(cls, config: dict, source: str) -> None:
        loss = config["loss"]
        heads = loss["num_prototypes"]
        if not heads or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in heads):
            raise UserError(f"{source}: loss.num_prototypes = {heads!r}; expected a list of positive integers")
        if loss["kmeans_iters"] < 1:
            raise UserError(f"{source}: loss.kmeans_iters = {loss['kmeans_iters']} must be >= 1")

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg, loss_cfg = config["model"], config["loss"]
        self.out_dim = model_cfg["projector_out_dim"]
        self.encoder = encoder
        self.projector = linear_mlp(encoder.feature_dim, model_cfg["projector_hidden_dim"], self.out_dim, 2,
                                    hidden_bn=True)
        self.prototypes = nn.ModuleList(nn.Linear(self.out_dim, k, bias=False) for k in loss_cfg["num_prototypes"])
        self.prototypes.requires_grad_(False)
        self.temperature, self.kmeans_iters = loss_cfg["temperature"], loss_cfg["kmeans_iters"]
        self.seed = config["seed"]
        self.batch_indices: torch.Tensor | None = None
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self.register_buffer("clustered_epoch", torch.tensor(-1))  # the epoch whose targets are held
        self.register_buffer("memory_cursor", torch.tensor(0))  # next memory row to write
        # empty until the engine sizes them (bind_data)
        self.register_buffer("memory", torch.zeros(len(CROPS_FOR_ASSIGN), 0, self.out_dim))
        self.register_buffer("memory_index", torch.zeros(0, dtype=torch.long))
        self.register_buffer("assignments", torch.zeros(len(self.prototypes), 0, dtype=torch.long))

    def bind_data(self, num_samples: int, samples_per_epoch: int) -> None:
        """Size the memory bank: ``samples_per_epoch`` rows (steps x global batch), targets for ``num_samples``."""
        largest = max(p.out_features for p in self.prototypes)
        if samples_per_epoch < largest:  # main_deepclusterv2.py cluster_memory's assert
            raise UserError(f"loss.num_prototypes: {largest} clusters but only {samples_per_epoch} samples per "
                            "epoch; reduce the number of prototypes")
        dtype, device = self.memory.dtype, self.memory.device
        self.memory = torch.zeros(len(CROPS_FOR_ASSIGN), samples_per_epoch, self.out_dim, dtype=dtype, device=device)
        self.memory_index = torch.zeros(samples_per_epoch, dtype=torch.long, device=device)
        self.assignments = torch.full((len(self.prototypes), num_samples), -100, dtype=torch.long, device=device)

    def _embed(self, views) -> list[torch.Tensor]:
        return [F.normalize(self.projector(self.encoder(v)), dim=1) for v in views]

    def _stage(self, z: list[torch.Tensor]) -> None:
        """Gather this step's assignment crops and indices from every rank, for the memory (written at commit)."""
        if self.batch_indices is None:
            raise RuntimeError("DeepCluster-v2 needs the batch's dataset indices (Method.batch_indices)")
        crops = torch.stack([distributed.gather(z[c].detach(), with_grad=False) for c in CROPS_FOR_ASSIGN])
        self._pending = crops, distributed.gather(self.batch_indices.to(self.memory_index.device), with_grad=False)

    def _write_memory(self) -> None:
        crops, indices = self._pending
        start = int(self.memory_cursor)
        self.memory[:, start:start + len(indices)] = crops.to(self.memory.dtype)
        self.memory_index[start:start + len(indices)] = indices
        self.memory_cursor += len(indices)
        self._pending = None

    @torch.no_grad()
    def init_memory(self, *views: torch.Tensor) -> None:
        """The reference's ``init_memory``: one batch of epoch 0, without gradient, into the memory bank."""
        self._stage(self._embed([views[c] for c in CROPS_FOR_ASSIGN]))
        self._write_memory()

    def initial_centroid_rows(self, head: int) -> np.ndarray:
        """Memory rows whose embeddings start head ``head``'s k-means this epoch (the same on every rank)."""
        order = np.random.default_rng((self.seed, self.epoch, head)).permutation(self.memory.shape[1])
        return order[:self.prototypes[head].out_features]

    @torch.no_grad()
    def cluster(self) -> None:
        """``cluster_memory``: k-means per head on the memory, prototypes := centroids, targets := assignments."""
        world, rank = distributed.world_size(), distributed.rank()
        rows = self.memory.shape[1] // world
        shard = slice(rank * rows, (rank + 1) * rows)
        self.assignments.fill_(-100)
        for head, prototypes in enumerate(self.prototypes):
            memory = self.memory[head % len(CROPS_FOR_ASSIGN)]
            init = memory[torch.as_tensor(self.initial_centroid_rows(head), device=memory.device)]
            centroids, local = spherical_kmeans(memory[shard], init, self.kmeans_iters)
            prototypes.weight.copy_(centroids)
            self.assignments[head, self.memory_index] = distributed.gather(local, with_grad=False)
        self.clustered_epoch.fill_(self.epoch)
        self.memory_cursor.zero_()

    def forward(self, *views: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if int(self.clustered_epoch) != self.epoch:
            with torch.autocast(views[0].device.type, enabled=False):
                self.cluster()
        z = self._embed(views)
        self._stage(z)
        scores = [torch.cat([prototypes(e) for e in z]) for prototypes in self.prototypes]
        targets = [head[self.batch_indices.to(head.device)] for head in self.assignments]
        return deepclusterv2_loss(scores, targets, len(views), self.temperature), {}

    @torch.no_grad()
    def after_step(self, progress: float) -> dict:
        if self._pending is not None:
            self._write_memory()
        return super().after_step(progress)
