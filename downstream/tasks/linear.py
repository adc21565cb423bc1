"""Linear probe on frozen features: ReSA paper B.3's protocol for small datasets.

The protocol of W-MSE's ``eval/sgd.py`` (htdt/self-supervised), which ReSA and INTL adopt for
CIFAR-10/100: an ``nn.Linear`` on precomputed features, Adam with weight decay 5e-6, the
learning rate decayed exponentially from 1e-2 to 1e-6 over 500 epochs, random mini-batches of
1000, no augmentation. W-MSE reshapes its permutation into rows of exactly 1000; here the last
batch of an epoch may be smaller, so any bank size works (identical when 1000 divides it).
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from downstream.config import require_positive_int
from downstream.features import FeatureSet
from downstream.tasks import Task

SCHEMA = {
    "epochs": 500,  # ReSA B.3 / W-MSE eval_sgd epoch=500
    "lr_start": 1e-2,  # ReSA B.3 / W-MSE eval/sgd.py lr_start
    "lr_end": 1e-6,  # ReSA B.3 / W-MSE eval/sgd.py lr_end
    "weight_decay": 5e-6,  # ReSA B.3 / W-MSE eval/sgd.py Adam weight_decay
    "train_batch_size": 1000,  # W-MSE eval/sgd.py: randperm(...).view(-1, 1000)
}


def train_linear_probe(
    train_feats: torch.Tensor, train_labels: torch.Tensor, num_classes: int, epochs: int,
    lr_start: float, lr_end: float, weight_decay: float, batch_size: int, seed: int,
) -> nn.Linear:
    """Fit ``nn.Linear(D, num_classes)`` with Adam + ExponentialLR; init and batches from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = nn.Linear(train_feats.shape[1], num_classes)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr_start, weight_decay=weight_decay)
    gamma = (lr_end / lr_start) ** (1 / epochs)  # W-MSE: lr reaches lr_end after the last epoch
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    criterion = nn.CrossEntropyLoss()
    features, labels = train_feats.float(), train_labels.long()
    classifier.train()
    for _ in tqdm(range(epochs), desc="linear probe", unit="epoch"):
        for batch in torch.randperm(len(features), generator=generator).split(batch_size):
            optimizer.zero_grad()
            criterion(classifier(features[batch]), labels[batch]).backward()
            optimizer.step()
        scheduler.step()
    return classifier.eval()


@torch.no_grad()
def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``top1`` and ``top5`` (top-min(5, classes)) accuracy in percent; ties to the lower class."""
    top = min(5, logits.shape[1])
    ranking = torch.sort(logits, dim=1, descending=True, stable=True).indices[:, :top]
    hits = ranking == labels.long()[:, None]
    return {
        "top1": 100.0 * hits[:, 0].float().mean().item(),
        "top5": 100.0 * hits.any(1).float().mean().item(),
    }


def run(features: dict[str, FeatureSet], config: dict, seed: int) -> dict[str, float]:
    train, test = features["train"], features["test"]
    num_classes = int(max(train.labels.max(), test.labels.max())) + 1
    classifier = train_linear_probe(
        train.features, train.labels, num_classes, require_positive_int(config, "epochs"),
        config["lr_start"], config["lr_end"], config["weight_decay"],
        require_positive_int(config, "train_batch_size"), seed,
    )
    with torch.no_grad():
        return topk_accuracy(classifier(test.features.float()), test.labels)


TASK = Task("linear", SCHEMA, ("train", "test"), run)
