"""N-way K-shot episodes drawn from a labelled set, reproducible from a seed.

Sampling reads only the labels and ``np.random.default_rng(seed)``, so every backbone
evaluated on the same subset with the same seed sees exactly the same episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from resa_core.errors import UserError


@dataclass(frozen=True)
class Episodes:
    """Indices into the labelled set and episode-local labels ``0..ways-1``, class-major order.

    ``support`` / ``support_labels``: ``(E, ways * shots)``; ``query`` / ``query_labels``:
    ``(E, ways * queries)``.
    """

    support: np.ndarray
    support_labels: np.ndarray
    query: np.ndarray
    query_labels: np.ndarray


def sample_episodes(
    labels: np.ndarray, ways: int, shots: int, queries: int, episodes: int, rng: np.random.Generator
) -> Episodes:
    """Per episode: ``ways`` distinct classes, then ``shots + queries`` distinct samples of each."""
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if ways > len(classes):
        raise UserError(f"few-shot: {ways}-way episodes need {ways} classes, the data has {len(classes)}")
    need = shots + queries
    if counts.min() < need:
        raise UserError(
            f"few-shot: {shots}-shot episodes with {queries} queries need {need} samples per class, "
            f"class {classes[counts.argmin()]} has {counts.min()}; raise test_size or lower queries"
        )
    members = {cls: np.flatnonzero(labels == cls) for cls in classes}
    support = np.empty((episodes, ways, shots), dtype=np.int64)
    query = np.empty((episodes, ways, queries), dtype=np.int64)
    for episode in range(episodes):
        for way, cls in enumerate(rng.choice(classes, ways, replace=False)):
            chosen = rng.choice(members[cls], need, replace=False)
            support[episode, way], query[episode, way] = chosen[:shots], chosen[shots:]
    local = np.arange(ways)
    return Episodes(
        support.reshape(episodes, -1), np.repeat(local, shots)[None].repeat(episodes, 0),
        query.reshape(episodes, -1), np.repeat(local, queries)[None].repeat(episodes, 0),
    )
