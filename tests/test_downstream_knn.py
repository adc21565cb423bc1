"""Weighted k-NN: a hand-computed vote, the k sweep, and a direct transcription of the formula."""

import math

import pytest
import torch

from downstream.tasks.knn import weighted_knn

# Bank on the unit circle: index -> (point, class).
BANK = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0], [0.6, 0.8]])
BANK_LABELS = torch.tensor([0, 1, 2, 3, 1])
# q1 (class 1): sims a=1, b=.8, e=.6 -> class 0 wins at k=1,2; e^.8 + e^.6 = 4.05 > e^1 at k=3.
# q2 (class 2): sims c=1, e=.8, b=.6 -> right at k=1,2; class 1 overtakes at k=3.
# q3 (class 3): a and d tie at 0 -> a (lower bank index) first; at k=2 classes 0 and 3 tie on
#               votes 1 and 1 -> class 0 (lower class index) ranks first.
QUERIES = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
QUERY_LABELS = torch.tensor([1, 2, 3])


def test_hand_computed_vote_with_k_below_five():
    metrics = weighted_knn(BANK, BANK_LABELS, QUERIES, QUERY_LABELS, [1, 2, 3], 1.0, 4, top5_rule="voted")
    third = 100.0 / 3
    assert metrics == pytest.approx({
        "top1_k1": third, "top5_k1": third,  # only q2; unvoted true classes never count for top-5
        "top1_k2": third, "top5_k2": 100.0,  # every true class now has a vote
        "top1_k3": third, "top5_k3": 100.0,  # q1 right, q2 overtaken, q3 loses the class tie
    })


def test_sweep_equals_separate_runs_and_chunking_does_not_matter():
    generator = torch.Generator().manual_seed(0)
    bank, queries = torch.randn(300, 16, generator=generator), torch.randn(70, 16, generator=generator)
    bank_labels, query_labels = torch.randint(0, 7, (300,), generator=generator), torch.randint(0, 7, (70,))
    swept = weighted_knn(bank, bank_labels, queries, query_labels, [1, 3, 20], 0.07, 7, chunk_size=16)
    separate = {}
    for k in (1, 3, 20):
        separate.update(weighted_knn(bank, bank_labels, queries, query_labels, [k], 0.07, 7, chunk_size=1000))
    assert swept == separate


def test_dino_top5_counts_the_first_min_5_k_ranks_voted_or_not():
    # every neighbour is class 0: the ranking is 0 (voted), then 1, 2, 3, ... (unvoted, lower index first)
    bank, bank_labels = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2]]), torch.tensor([0, 0, 0])
    queries, query_labels = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([1, 4])
    dino = weighted_knn(bank, bank_labels, queries, query_labels, [1, 2, 3], 0.07, 6)
    # DINO eval_knn.py: correct.narrow(1, 0, min(5, k)); class 1 is rank 2, class 4 is rank 5
    assert dino == {"top1_k1": 0.0, "top5_k1": 0.0, "top1_k2": 0.0, "top5_k2": 50.0,
                    "top1_k3": 0.0, "top5_k3": 50.0}
    voted = weighted_knn(bank, bank_labels, queries, query_labels, [3], 0.07, 6, top5_rule="voted")
    assert voted == {"top1_k3": 0.0, "top5_k3": 0.0}
    five = weighted_knn(bank, bank_labels, queries, query_labels, [5], 0.07, 6)  # k = 5 > bank: all 5 ranks
    assert five["top5_k5"] == 100.0


def _transcribed_knn(bank, bank_labels, queries, query_labels, k, temperature, num_classes, rule="dino"):
    """Score_c(q) = sum over the k most similar x_j (cosine) with y_j = c of exp(s_j / T)."""
    bank = [row / row.norm() for row in bank.double()]
    top1 = top5 = 0
    for query, label in zip(queries.double(), query_labels.tolist(), strict=True):
        query = query / query.norm()
        sims = [float(query @ row) for row in bank]
        order = sorted(range(len(bank)), key=lambda j: (-sims[j], j))[:k]
        votes = [0.0] * num_classes
        for j in order:
            votes[int(bank_labels[j])] += math.exp(sims[j] / temperature)
        ranking = sorted(range(num_classes), key=lambda c: (-votes[c], c))
        top1 += ranking[0] == label
        if rule == "dino":  # DINO eval_knn.py knn_classifier: correct.narrow(1, 0, min(5, k))
            top5 += label in ranking[: min(5, k)]
        else:
            top5 += label in ranking[:5] and votes[label] > 0
    return 100.0 * top1 / len(queries), 100.0 * top5 / len(queries)


def test_matches_direct_transcription_on_random_data():
    generator = torch.Generator().manual_seed(1)
    bank, queries = torch.randn(120, 8, generator=generator), torch.randn(40, 8, generator=generator)
    bank_labels = torch.randint(0, 12, (120,), generator=generator)
    query_labels = torch.randint(0, 12, (40,), generator=generator)
    for rule in ("dino", "voted"):
        metrics = weighted_knn(bank, bank_labels, queries, query_labels, [2, 5, 10], 0.1, 12, chunk_size=9,
                               top5_rule=rule)
        for k in (2, 5, 10):
            top1, top5 = _transcribed_knn(bank, bank_labels, queries, query_labels, k, 0.1, 12, rule)
            assert metrics[f"top1_k{k}"] == pytest.approx(top1)
            assert metrics[f"top5_k{k}"] == pytest.approx(top5)
