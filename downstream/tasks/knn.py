"""k-NN classification on frozen features, two protocols swept in one pass over the bank.

* ``weighted`` (Wu et al. 2018, DINO ``eval_knn.py``; ReSA Tables 3 and 6): cosine similarity,
  neighbour j adds ``exp(s_j / T)`` to its class (T = 0.07), ``top1_k{k}`` / ``top5_k{k}``.
* ``majority`` (W-MSE / INTL ``eval/knn.py`` of htdt/self-supervised; ReSA B.3 "a simple 5-nn
  classifier", Tables 1 and 7): Euclidean distance on the raw features, unweighted majority
  vote among the k = 5 nearest, ``top1_majority_k{k}``.

Queries are processed in chunks (memory: ``chunk_size`` x bank size similarities), so
ImageNet-size banks fit. One similarity matmul per chunk serves both protocols: the raw
queries against the raw bank, ``p = q . x`` (the bank is never copied: a normalised copy of an
ImageNet bank would double its memory and cost a pass over it). The Euclidean ranking follows
from it, ``-|q - x|^2 + |q|^2 = 2 p - |x|^2``, and ``p`` scaled in place by ``1 / |x|`` per
column gives ``s = q . x / |x|``, whose top-k per row is the cosine top-k (dividing a row by
``|q|`` keeps its order). The top ``max(k)``
neighbours of a chunk are found once with ``topk`` and sliced for every k.

Deterministic tie-breaking (DINO and W-MSE leave both to ``topk``):

* neighbours of equal similarity (or distance): the lower bank index comes first (rows whose
  k-th neighbour ties with an unselected one, seen as a (k+1)-th ``topk`` value equal to the
  k-th, are re-ranked with a full stable sort);
* classes of equal score (or count): the lower class index ranks first (W-MSE's
  ``unique(return_counts=True)`` + ``argmax`` does the same).

Top-5 (``top5_rule``): ``dino`` (default) counts a query as correct when its class is among
the first ``min(5, k)`` ranked classes, as DINO's ``eval_knn.py`` ``knn_classifier``
(``correct.narrow(1, 0, min(5, k))``), unvoted classes included in their (lower-index-first)
rank order; ``voted`` looks at the first five ranks but never counts a class without a vote.

``buckets=long_tail`` adds, for each top-1 metric, its accuracy over the test queries of each
class-frequency bucket of a long-tailed pretraining set, ``{metric}_many`` / ``_medium`` / ``_few``
(:mod:`downstream.frequency_buckets`: thirds of the classes by the CIFAR-100-LT profile's rank).
Queries are independent given the bank, so a bucket's accuracy is the same k-NN on its queries.
"""

from __future__ import annotations

import torch

from downstream.config import require_positive_int, require_positive_int_list
from downstream.features import FeatureSet
from downstream.frequency_buckets import BUCKETS, class_buckets
from downstream.tasks import Task
from resa_core.errors import UserError

SCHEMA = {
    "protocol": "weighted",  # weighted (DINO, ReSA Tables 3/6), majority (W-MSE 5-nn, ReSA Tables 1/7) or both
    "ks": [5, 10, 20],  # weighted k sweep: ReSA Table 3 uses k=20 (DINO); 5 and 10 around it
    "majority_ks": [5],  # W-MSE eval/knn.py k=5; ReSA B.3 "a simple 5-nn classifier (k = 5)"
    "temperature": 0.07,  # Wu et al. 2018; DINO eval_knn.py --temperature default
    "chunk_size": 256,  # queries per similarity block (memory: chunk_size x bank size)
    "top5_rule": "dino",  # DINO eval_knn.py knn_classifier: the first min(5, k) ranks; or "voted"
    "buckets": "none",  # long_tail: also top-1 per many/medium/few class bucket (downstream.frequency_buckets)
}
PROTOCOLS = ("weighted", "majority", "both")
BUCKET_RULES = ("none", "long_tail")
TOP5_RULES = ("dino", "voted")
NORM_EPS = 1e-12  # as F.normalize: a zero row stays zero


def _order_by_score_then_index(scores: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row's selected neighbours by score (descending), ties to the lower bank index."""
    by_index = indices.argsort(dim=1)
    scores, indices = scores.gather(1, by_index), indices.gather(1, by_index)
    by_score = torch.sort(scores, dim=1, descending=True, stable=True).indices
    return scores.gather(1, by_score), indices.gather(1, by_score)


def top_neighbours(scores: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` highest scores per row and their columns, ties to the lower column index."""
    extra = min(count + 1, scores.shape[1])  # one more: it equals the k-th exactly when a tie straddles k
    values, indices = torch.topk(scores, extra, dim=1)
    boundary_ties = values[:, count - 1] == values[:, -1] if extra > count else torch.zeros(len(scores), dtype=bool)
    values, indices = _order_by_score_then_index(values[:, :count], indices[:, :count])
    if boundary_ties.any():
        rows = boundary_ties.nonzero().squeeze(1)
        exact = torch.sort(scores[rows], dim=1, descending=True, stable=True)
        values[rows], indices[rows] = exact.values[:, :count], exact.indices[:, :count]
    return values, indices


def _topk_hits(votes: torch.Tensor, targets: torch.Tensor, top: int, voted_only: bool) -> tuple[int, int]:
    """(top-1 hits, top-``top`` hits) from class scores; with ``voted_only`` unvoted classes never hit."""
    ranking = torch.sort(votes, dim=1, descending=True, stable=True).indices[:, :top]
    hits = ranking == targets[:, None]
    if voted_only:
        hits &= torch.gather(votes, 1, ranking) > 0
    return int(hits[:, 0].sum()), int(hits.any(dim=1).sum())


def _class_scores(neighbour_labels: torch.Tensor, weights: torch.Tensor, num_classes: int) -> torch.Tensor:
    votes = torch.zeros(len(neighbour_labels), num_classes, dtype=weights.dtype)
    return votes.scatter_add_(1, neighbour_labels, weights)


def knn_metrics(
    train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor, test_labels: torch.Tensor,
    num_classes: int, ks: list[int] = (), temperature: float = 0.07, majority_ks: list[int] = (),
    chunk_size: int = 256, top5_rule: str = "dino",
) -> dict[str, float]:
    """Weighted (``ks``) and majority (``majority_ks``) k-NN accuracies in percent, one matmul per chunk.

    Similarities are computed in the features' dtype (float32 features: a float32 matmul, as
    the bare ``matmul + topk`` baseline of ``benchmarks/knn.py``); votes are summed in float64.
    """
    if top5_rule not in TOP5_RULES:
        raise UserError(f"config key 'top5_rule' must be one of {TOP5_RULES}, got {top5_rule!r}")
    train_labels, test_labels = train_labels.long(), test_labels.long()
    bank_norms = torch.linalg.vector_norm(train_feats, dim=1)
    inverse_norms = 1.0 / bank_norms.clamp_min(NORM_EPS)  # the bank itself is never copied or normalised
    squared_norms = bank_norms.square()
    hits = {f"top1_k{k}": 0 for k in ks} | {f"top5_k{k}": 0 for k in ks}
    hits |= {f"top1_majority_k{k}": 0 for k in majority_ks}
    for start in range(0, len(test_feats), chunk_size):
        queries, targets = test_feats[start : start + chunk_size], test_labels[start : start + chunk_size]
        similarity = queries @ train_feats.T  # q . x: the one matmul of the chunk
        if majority_ks:
            # -||q - x||^2 + ||q||^2 = 2 q.x - ||x||^2: the same ranking as the Euclidean distance
            closeness = torch.add(-squared_norms, similarity, alpha=2.0)
        if ks:
            similarity.mul_(inverse_norms)  # q . x / |x| (the cosine order of the row), in place
            values, indices = top_neighbours(similarity, min(max(ks), len(train_feats)))
            query_norms = torch.linalg.vector_norm(queries, dim=1, keepdim=True).clamp_min_(NORM_EPS)
            weights = (values.double() / query_norms.double() / temperature).exp()
            neighbour_labels = train_labels[indices]
            for k in ks:
                top = min(5, k, num_classes) if top5_rule == "dino" else min(5, num_classes)
                top1, topn = _topk_hits(_class_scores(neighbour_labels[:, :k], weights[:, :k], num_classes),
                                        targets, top, voted_only=top5_rule == "voted")
                hits[f"top1_k{k}"] += top1
                hits[f"top5_k{k}"] += topn
        if majority_ks:
            _, indices = top_neighbours(closeness, min(max(majority_ks), len(train_feats)))
            neighbour_labels = train_labels[indices]
            ones = torch.ones(neighbour_labels.shape, dtype=torch.float64)
            for k in majority_ks:
                counts = _class_scores(neighbour_labels[:, :k], ones[:, :k], num_classes)
                hits[f"top1_majority_k{k}"] += int((counts.argmax(1) == targets).sum())
    return {name: 100.0 * count / len(test_feats) for name, count in hits.items()}


def weighted_knn(
    train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
    test_labels: torch.Tensor, ks: list[int], temperature: float, num_classes: int, chunk_size: int = 256,
    top5_rule: str = "dino",
) -> dict[str, float]:
    """Weighted k-NN accuracies ``{top1_k{k}, top5_k{k}}`` in percent for every k in ``ks``."""
    return knn_metrics(train_feats, train_labels, test_feats, test_labels, num_classes, ks=ks,
                       temperature=temperature, chunk_size=chunk_size, top5_rule=top5_rule)


def run(features: dict[str, FeatureSet], config: dict, seed: int) -> dict[str, float]:
    """k-NN of the test role against the train role (deterministic: ``seed`` is unused)."""
    chunk_size = require_positive_int(config, "chunk_size")
    if config["protocol"] not in PROTOCOLS:
        raise UserError(f"config key 'protocol' must be one of {PROTOCOLS}, got {config['protocol']!r}")
    weighted = config["protocol"] in ("weighted", "both")
    majority = config["protocol"] in ("majority", "both")
    ks = require_positive_int_list(config, "ks") if weighted else []
    majority_ks = require_positive_int_list(config, "majority_ks") if majority else []
    if config["temperature"] <= 0:
        raise UserError(f"config key 'temperature' must be positive, got {config['temperature']}")
    if config["buckets"] not in BUCKET_RULES:
        raise UserError(f"config key 'buckets' must be one of {BUCKET_RULES}, got {config['buckets']!r}")
    train, test = features["train"], features["test"]
    num_classes = int(max(train.labels.max(), test.labels.max())) + 1
    args = (num_classes, ks, config["temperature"], majority_ks, chunk_size, config["top5_rule"])
    metrics = knn_metrics(train.features, train.labels, test.features, test.labels, *args)
    if config["buckets"] == "long_tail":
        metrics |= bucket_metrics(train.features, train.labels, test.features, test.labels, *args)
    return metrics


def bucket_metrics(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
                   test_labels: torch.Tensor, num_classes: int, *args) -> dict[str, float]:
    """``{top1 metric}_{bucket}``: :func:`knn_metrics`' top-1 accuracies on each bucket's test queries."""
    query_bucket = class_buckets(num_classes)[test_labels.long()]
    out = {}
    for index, bucket in enumerate(BUCKETS):
        rows = query_bucket == index
        if not rows.any():
            raise UserError(f"buckets=long_tail: no test sample in the '{bucket}' classes")
        part = knn_metrics(train_feats, train_labels, test_feats[rows], test_labels[rows], num_classes, *args)
        out |= {f"{name}_{bucket}": value for name, value in part.items() if name.startswith("top1")}
    return out


TASK = Task("knn", SCHEMA, ("train", "test"), run)
