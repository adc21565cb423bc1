"""t-SNE scatter of a representation coloured by class (ReSA Figures 7 and 8), written as a PNG.

With ``superclasses`` (CIFAR-100's 20 coarse labels) the plot keeps the points of a few
seeded superclasses and encloses each with its convex hull, as ReSA Figure 8 shows five.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.manifold import TSNE

from resa_core.atomic import write_atomic


def tsne_png(
    path: Path, features: torch.Tensor, labels: np.ndarray, seed: int, title: str,
    superclasses: np.ndarray | None = None, shown_superclasses: int = 5,
) -> Path:
    """Embed L2-normalised ``features`` in 2-D (sklearn TSNE, ``random_state=seed``) and save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.spatial import ConvexHull, QhullError

    keep = np.arange(len(labels))
    if superclasses is not None:
        chosen = np.random.default_rng(seed).choice(np.unique(superclasses), shown_superclasses, replace=False)
        keep = np.flatnonzero(np.isin(superclasses, chosen))
    points = F.normalize(features[keep].double(), dim=1).numpy()
    perplexity = min(30.0, max(2.0, (len(keep) - 1) / 3))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)
    figure, axes = plt.subplots(figsize=(6, 6))
    axes.scatter(xy[:, 0], xy[:, 1], c=labels[keep], cmap="tab20", s=4)
    if superclasses is not None:
        for group in np.unique(superclasses[keep]):
            members = xy[superclasses[keep] == group]
            try:
                hull = members[ConvexHull(members).vertices]
            except (QhullError, ValueError):  # fewer than 3 points or all on a line: no outline
                continue
            axes.fill(hull[:, 0], hull[:, 1], fill=False, linewidth=1.0)
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    write_atomic(path, lambda handle: figure.savefig(handle, format="png", dpi=120, bbox_inches="tight"))
    plt.close(figure)
    return path
