"""Weighted k-NN classification (Wu et al. 2018, as in DINO's ``eval_knn.py``).

Each query votes with its k most cosine-similar bank samples, neighbour j adding
``exp(s_j / T)`` to the score of its class (T = 0.07: Wu et al. 2018 and DINO's default, the
k-NN of ReSA paper B.3). All ks are swept in one pass: the top ``max(ks)`` neighbours are
found once per chunk of queries and sliced for each k.

Deterministic tie-breaking (DINO leaves both to ``topk``/``sort``):

* neighbours of equal similarity: the lower bank index comes first;
* classes of equal score: the lower class index ranks first.

Top-5 counts a query as correct only if its class is among the five best ranked classes *and*
received a vote: a class without a vote never counts, so for k < 5 top-5 asks whether the true
class is among the voted classes (DINO instead looks only at the first ``min(5, k)`` ranks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from downstream.config import require_positive_int, require_positive_int_list
from downstream.features import FeatureSet
from downstream.tasks import Task
from resa_core.errors import UserError

SCHEMA = {
    "ks": [5, 10, 20],  # ReSA Table 1/7 report k=5 (W-MSE's 5-NN), Table 3 k=20 (DINO); 10 between
    "temperature": 0.07,  # Wu et al. 2018; DINO eval_knn.py --temperature default
    "chunk_size": 256,  # queries per similarity block (memory: chunk_size x bank size)
}


def _rank_neighbours(similarity: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``count`` similarities per row, ties to the lower column index (stable sort)."""
    values, indices = torch.sort(similarity, dim=1, descending=True, stable=True)
    return values[:, :count], indices[:, :count]


def _topk_hits(votes: torch.Tensor, targets: torch.Tensor, top: int) -> tuple[int, int]:
    """(top-1 hits, top-``top`` hits) from class scores; unvoted classes never hit."""
    ranking = torch.sort(votes, dim=1, descending=True, stable=True).indices[:, :top]
    ranked_true = ranking == targets[:, None]
    voted = torch.gather(votes, 1, ranking) > 0
    hits = ranked_true & voted
    return int(hits[:, 0].sum()), int(hits.any(dim=1).sum())


def weighted_knn(
    train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
    test_labels: torch.Tensor, ks: list[int], temperature: float, num_classes: int, chunk_size: int = 256,
) -> dict[str, float]:
    """Weighted k-NN accuracies ``{top1_k{k}, top5_k{k}}`` in percent for every k in ``ks``.

    Features are L2-normalised here; votes are accumulated in float64.
    """
    bank = F.normalize(train_feats.double(), dim=1)
    queries = F.normalize(test_feats.double(), dim=1)
    train_labels, test_labels = train_labels.long(), test_labels.long()
    max_k = min(max(ks), len(bank))
    top = min(5, num_classes)
    hits = {k: [0, 0] for k in ks}
    for start in range(0, len(queries), chunk_size):
        similarity = queries[start : start + chunk_size] @ bank.T
        values, indices = _rank_neighbours(similarity, max_k)
        weights = (values / temperature).exp()
        neighbour_labels = train_labels[indices]
        targets = test_labels[start : start + chunk_size]
        for k in ks:
            votes = torch.zeros(len(targets), num_classes, dtype=weights.dtype)
            votes.scatter_add_(1, neighbour_labels[:, :k], weights[:, :k])
            top1, topn = _topk_hits(votes, targets, top)
            hits[k][0] += top1
            hits[k][1] += topn
    total = len(queries)
    metrics = {}
    for k in ks:
        metrics[f"top1_k{k}"] = 100.0 * hits[k][0] / total
        metrics[f"top5_k{k}"] = 100.0 * hits[k][1] / total
    return metrics


def run(features: dict[str, FeatureSet], config: dict, seed: int) -> dict[str, float]:
    """k-NN of the test role against the train role (deterministic: ``seed`` is unused)."""
    ks = require_positive_int_list(config, "ks")
    chunk_size = require_positive_int(config, "chunk_size")
    if config["temperature"] <= 0:
        raise UserError(f"config key 'temperature' must be positive, got {config['temperature']}")
    train, test = features["train"], features["test"]
    num_classes = int(max(train.labels.max(), test.labels.max())) + 1
    return weighted_knn(
        train.features, train.labels, test.features, test.labels, ks, config["temperature"],
        num_classes, chunk_size,
    )


TASK = Task("knn", SCHEMA, ("train", "test"), run)
