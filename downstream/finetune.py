"""Training a linear head (frozen encoder) or encoder + head (fine-tuning) on images, then top-1/top-5.

One loop for the two image-training protocols of ReSA B.3: the ImageNet linear probe (encoder
frozen in eval mode, augmented images, SGD, MultiStepLR) and low-shot fine-tuning (Table 10:
encoder and head trained with their own learning rates, cosine schedule). Training views are
RandomResizedCrop + horizontal flip, evaluation views resize + centre crop
(:mod:`downstream.transforms`, as DINO ``eval_linear.py``).

Multi-GPU: launched with ``torchrun`` (``WORLD_SIZE`` > 1) the loop runs DistributedDataParallel
with a DistributedSampler, each process holding ``batch_size / world_size`` images per step,
and sums the evaluation counts over processes (:mod:`downstream.distributed`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from downstream import distributed
from downstream.transforms import eval_transform, train_transform
from resa_core.data.catalog import LabelledImages
from resa_core.errors import UserError

log = logging.getLogger(__name__)
SGD_MOMENTUM = 0.9  # DINO eval_linear.py / SimCLR fine-tuning: SGD with momentum 0.9


@dataclass(frozen=True)
class TrainSpec:
    """What the loop needs; ``encoder_lr`` None = frozen encoder (linear probe)."""

    epochs: int
    batch_size: int
    head_lr: float
    encoder_lr: float | None
    weight_decay: float
    schedule: str  # "cosine" or "multistep"
    milestones: tuple[int, ...] = ()
    vit_last_blocks: int = 1


class LastBlocksCLS(nn.Module):
    """Concatenated [CLS] tokens of a timm ViT's last ``blocks`` blocks, each after the final norm.

    DINO ``eval_linear.py`` (``n_last_blocks=4`` for ViT-S): ``torch.cat([x[:, 0] for x in
    model.get_intermediate_layers(inp, n)], dim=-1)``; ReSA B.3 follows it for ViT-S/16.
    """

    def __init__(self, vit: nn.Module, blocks: int):
        super().__init__()
        self.vit, self.blocks = vit, blocks

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        layers = self.vit.get_intermediate_layers(images, n=self.blocks, return_prefix_tokens=True, norm=True)
        return torch.cat([prefix[:, 0] for _, prefix in layers], dim=-1)


def feature_encoder(encoder: nn.Module, family: str | None, vit_last_blocks: int) -> nn.Module:
    if family == "vit" and vit_last_blocks > 1:
        return LastBlocksCLS(encoder, vit_last_blocks)
    return encoder


class Classifier(nn.Module):
    def __init__(self, encoder: nn.Module, feature_dim: int, num_classes: int, frozen: bool):
        super().__init__()
        self.encoder, self.frozen = encoder, frozen
        self.head = nn.Linear(feature_dim, num_classes)
        # DINO eval_linear.py LinearClassifier init: weight N(0, 0.01), bias 0
        self.head.weight.data.normal_(mean=0.0, std=0.01)
        self.head.bias.data.zero_()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.frozen:
            self.encoder.eval()
            with torch.no_grad():
                features = self.encoder(images)
        else:
            features = self.encoder(images)
        return self.head(features.flatten(1))


def _loader(data: LabelledImages, batch_size: int, shuffle: bool, num_workers: int, seed: int) -> DataLoader:
    """Training: a DistributedSampler across processes; evaluation: every process its own disjoint
    slice (no padding, so the summed counts cover each test image exactly once)."""
    sampler = None
    if distributed.world_size() > 1 and shuffle:
        sampler = DistributedSampler(data, shuffle=True, seed=seed)
    elif distributed.world_size() > 1:
        data = data.subset(range(distributed.rank(), len(data), distributed.world_size()))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=num_workers, drop_last=False, generator=generator,
                      pin_memory=torch.cuda.is_available())


@torch.no_grad()
def _feature_dim(encoder: nn.Module, data: LabelledImages, device: torch.device) -> int:
    image, _ = data[0]
    encoder.eval()
    return encoder(image[None].to(device)).flatten(1).shape[1]


def train_and_evaluate(
    encoder: nn.Module, family: str | None, train: LabelledImages, test: LabelledImages, spec: TrainSpec,
    config: dict, seed: int,
) -> dict[str, float]:
    """Train per ``spec`` on ``train`` (augmented), return ``top1`` / ``top5`` on ``test`` in percent."""
    if spec.batch_size % distributed.world_size():
        raise UserError(f"batch size {spec.batch_size} is not divisible by {distributed.world_size()} processes")
    device = distributed.device()
    torch.manual_seed(seed)
    encoder = feature_encoder(encoder, family, spec.vit_last_blocks).to(device)
    train.transform = train_transform(config["image_size"], config["normalization"])
    test.transform = eval_transform(config["image_size"], config.get("resize_size"), config["normalization"],
                                    config.get("resize_interpolation", "bicubic"))
    num_classes = int(max(train.labels.max(), test.labels.max())) + 1
    model = Classifier(encoder, _feature_dim(encoder, test, device), num_classes, spec.encoder_lr is None).to(device)
    groups = [{"params": model.head.parameters(), "lr": spec.head_lr}]
    if spec.encoder_lr is not None:
        groups.append({"params": model.encoder.parameters(), "lr": spec.encoder_lr})
    optimizer = torch.optim.SGD(groups, momentum=SGD_MOMENTUM, weight_decay=spec.weight_decay)
    if spec.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=spec.epochs)
    else:
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(spec.milestones), gamma=0.1)
    trained = distributed.wrap(model, trainable_encoder=spec.encoder_lr is not None)
    per_process = spec.batch_size // distributed.world_size()
    loader = _loader(train, per_process, True, config["num_workers"], seed)
    criterion = nn.CrossEntropyLoss()
    for epoch in tqdm(range(spec.epochs), desc="training", unit="epoch", disable=not distributed.is_main()):
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        model.train()
        for images, labels in loader:
            loss = criterion(trained(images.to(device, non_blocking=True)), labels.to(device, non_blocking=True))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
        log.info("epoch %d loss %.4f lr %s", epoch, loss.item(), [group["lr"] for group in optimizer.param_groups])
    return evaluate(model, _loader(test, per_process, False, config["num_workers"], seed), device)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
    """Top-1 / top-5 (top-min(5, classes)) over the loader, summed over processes."""
    model.eval()
    counts = torch.zeros(3, dtype=torch.float64, device=device)
    for images, labels in loader:
        logits, labels = model(images.to(device)), labels.to(device)
        ranking = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = ranking == labels[:, None]
        counts += torch.stack([hits[:, 0].sum(), hits.any(1).sum(), torch.tensor(len(labels), device=device)])
    counts = distributed.all_reduce_sum(counts)
    return {"top1": float(100.0 * counts[0] / counts[2]), "top5": float(100.0 * counts[1] / counts[2])}
