"""Clustering metrics of a representation against the true labels.

* ReSA Appendix A: SC_mean and SC_std, the mean and standard deviation over samples of the
  silhouette coefficient computed with the *true* labels as clusters (Def. A.1, Rousseeuw 1987),
  and ARI between the true labels and seeded k-means with k = number of classes (Def. A.2).
  Features are L2-normalised and distances Euclidean (on unit vectors a monotone function of
  the cosine similarity the SSL methods train with).
* DSA Section III (Table I/VIII): on L2-normalised features z with class means mu_i, the
  inter-class distance is the mean of ||mu_i - mu_j||_2 over the K(K-1)/2 class pairs, and the
  intra-class variance the mean over classes of (1/N_i) sum_j ||z_ij - mu_i||_2^2, as the
  formulas in the text state. (For unit vectors this variance is at most 1; the paper's table
  reports values above 1, so its code must differ in some way the text does not say.)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_samples

KMEANS_INITS = 10  # k-means++ restarts (scikit-learn's classic default n_init=10)


def silhouette_stats(features: torch.Tensor, labels: np.ndarray) -> tuple[float, float]:
    """(SC_mean, SC_std) over all samples, true labels as clusters, Euclidean on unit vectors."""
    values = silhouette_samples(F.normalize(features.double(), dim=1).numpy(), labels, metric="euclidean")
    return float(values.mean()), float(values.std())


def kmeans_ari(features: torch.Tensor, labels: np.ndarray, seed: int) -> float:
    """ARI between the labels and k-means (k = #classes, ``random_state=seed``) on unit vectors."""
    points = F.normalize(features.double(), dim=1).numpy()
    clusters = KMeans(n_clusters=len(np.unique(labels)), n_init=KMEANS_INITS, random_state=seed).fit_predict(points)
    return float(adjusted_rand_score(labels, clusters))


def class_separation(features: torch.Tensor, labels: np.ndarray) -> tuple[float, float]:
    """DSA (inter-class distance, mean intra-class variance) on L2-normalised features."""
    z = F.normalize(features.double(), dim=1)
    labels_t = torch.as_tensor(labels)
    classes = torch.unique(labels_t)
    means = torch.stack([z[labels_t == c].mean(0) for c in classes])
    variances = torch.stack([(z[labels_t == c] - means[i]).square().sum(1).mean() for i, c in enumerate(classes)])
    pairs = torch.triu_indices(len(classes), len(classes), offset=1)
    distances = (means[pairs[0]] - means[pairs[1]]).norm(dim=1)
    return float(distances.mean()), float(variances.mean())
