"""Clustering analysis of a checkpoint's representations (ReSA Section 3 / Appendix A, DSA Table VIII).

For the encoding H (the backbone output), each hidden layer of the projector (P0, P1, ...) and
the embedding Z, on a seeded class-balanced subset of the train role (default 10k samples: the
full O(N^2) silhouette does not fit ImageNet): SC_mean, SC_std and ARI (ReSA Figures 3, 4, 9)
and DSA's inter-class distance and intra-class variance (:mod:`downstream.cluster_metrics`).
The projector comes from a resa-bench pretrain checkpoint (:mod:`downstream.projector`); any
other weights give the encoding only. A t-SNE PNG of one layer is written under
``<run>/plots/clustering/<dataset>/<backbone-sha8>/`` (ReSA Figure 7; on CIFAR-100 with the
convex hulls of five seeded superclasses, Figure 8).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from downstream.cluster_metrics import class_separation, kmeans_ari, silhouette_stats
from downstream.config import require_positive_int
from downstream.features import FeatureSet
from downstream.projector import projector_from_checkpoint, projector_layers
from downstream.subsets import balanced_indices
from downstream.tasks import Task, TaskContext
from downstream.tsne import tsne_png
from resa_core.data.catalog import open_dataset
from resa_core.errors import UserError

log = logging.getLogger(__name__)
SCHEMA = {
    "samples": 10000,  # class-balanced subset on which the metrics are computed (seeded by --seed)
    "tsne_layer": "encoding",  # layer drawn as a t-SNE PNG; null: no plot
    "tsne_samples": 2000,  # points in the plot (t-SNE is O(N^2) here too)
}


def layer_features(encodings: FeatureSet, weights: str) -> dict:
    """``{"encoding": H}`` plus the projector's hidden layers and embedding when ``weights`` has them."""
    layers = {"encoding": encodings.features}
    projector = projector_from_checkpoint(weights) if Path(weights).is_file() else None
    if projector is not None:
        layers |= projector_layers(projector, encodings.features)
    return layers


def _superclasses(context: TaskContext, config: dict, indices: np.ndarray) -> np.ndarray | None:
    if context.dataset.name != "cifar100":
        return None
    return open_dataset("cifar100_coarse", "train", config["data_root"]).labels[indices]


def run(features: dict[str, FeatureSet], config: dict, seed: int, context: TaskContext) -> dict[str, float]:
    train = features["train"]
    labels = train.labels.numpy()
    keep = balanced_indices(labels, require_positive_int(config, "samples"), seed)
    layers = layer_features(train, context.weights)
    metrics = {}
    for name, values in layers.items():
        subset = values[keep]
        metrics[f"sc_mean_{name}"], metrics[f"sc_std_{name}"] = silhouette_stats(subset, labels[keep])
        metrics[f"ari_{name}"] = kmeans_ari(subset, labels[keep], seed)
        metrics[f"inter_class_dist_{name}"], metrics[f"intra_class_var_{name}"] = class_separation(
            subset, labels[keep])
        log.info("clustering %s: %s", name, {k: round(v, 4) for k, v in metrics.items() if k.endswith(name)})
    if config["tsne_layer"] is not None:
        if config["tsne_layer"] not in layers:
            raise UserError(
                f"config key 'tsne_layer' must be one of {sorted(layers)} here, got {config['tsne_layer']!r}")
        shown = balanced_indices(labels, require_positive_int(config, "tsne_samples"), seed)
        path = (context.run_dir / "plots" / "clustering" / context.dataset.name / context.backbone_sha256[:8]
                / f"seed{seed}_{config['tsne_layer']}.png")
        tsne_png(path, layers[config["tsne_layer"]][shown], labels[shown], seed,
                 f"{context.dataset.name} {config['tsne_layer']}",
                 _superclasses(context, config, train.indices.numpy()[shown]))
        log.info("t-SNE plot %s", path)
    return metrics


TASK = Task("clustering", SCHEMA, ("train",), run, uses_context=True)
