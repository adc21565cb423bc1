"""N-way K-shot episodes drawn from a labelled set, reproducible from a seed.

Sampling reads only the labels and ``np.random.default_rng(seed)``, so every backbone
evaluated on the same subset with the same seed sees exactly the same episodes; the CLI also
saves them under ``<run>/episodes/`` (:func:`shared_episodes`) and reloads them for the next
backbone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resa_core.atomic import sha256_json, write_atomic
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


def episode_key(indices: np.ndarray, labels: np.ndarray, ways: int, shots: list[int], queries: int,
                episodes: int, seed: int) -> str:
    """Hash of everything that fixes the episodes: the images (indices + labels) and the sampling."""
    return sha256_json({
        "indices": hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest(),
        "labels": hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest(),
        "ways": ways, "shots": list(shots), "queries": queries, "episodes": episodes, "seed": seed,
    })


def shared_episodes(
    run_dir: str | Path, dataset: str, indices: np.ndarray, labels: np.ndarray, ways: int, shots: list[int],
    queries: int, episodes: int, seed: int,
) -> dict[int, Episodes]:
    """The episodes of every ``shots`` value, saved under ``<run>/episodes/`` and reused by every backbone.

    Sampled once (one ``default_rng(seed)`` drawn for each shots value in order) and written
    atomically; a later run on the same images with the same parameters loads the file, so two
    backbones are compared on identical episodes even if the sampling code changes in between.
    """
    key = episode_key(indices, labels, ways, shots, queries, episodes, seed)
    path = Path(run_dir) / "episodes" / f"{dataset}-{key[:16]}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return {shot: Episodes(*(stored[f"{field}_{shot}"] for field in _FIELDS)) for shot in shots}
    rng = np.random.default_rng(seed)
    sampled = {shot: sample_episodes(labels, ways, shot, queries, episodes, rng) for shot in shots}
    arrays = {f"{field}_{shot}": getattr(ep, field) for shot, ep in sampled.items() for field in _FIELDS}
    write_atomic(path, lambda handle: np.savez(handle, **arrays))
    return sampled


_FIELDS = ("support", "support_labels", "query", "query_labels")
