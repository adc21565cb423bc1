"""Online evaluation during pretraining: weighted k-NN and the paper's clustering metrics.

Every ``monitor.every_epochs`` epochs, on rank 0, the encoder that transfer uses (the momentum
encoder where there is one, DESIGN.md contract 1) in eval mode embeds a seeded class-balanced
held-out subset (``monitor.eval_size``, default 10k like the paper's analysis) and a
training subset (the k-NN memory bank). Reported, per representation:

* ``knn_top1``: DINO's weighted k-NN (``eval_knn.py``: cosine similarity, the k nearest
  training features vote with weight ``exp(sim / T)``, k 20, T 0.07) on the encoding;
* ``sc_mean``, ``sc_std``: mean and standard deviation of the per-sample Silhouette
  Coefficient with the true labels (paper Section 3, Appendix A.1), Euclidean distance on
  L2-normalised features;
* ``ari``: Adjusted Rand Index between the true labels and seeded k-means with k = number of
  classes (Appendix A.2);

for the ``encoding``, the projector's hidden layers (``proj_hidden1``, ...) and the
``embedding`` (Figures 4 and 9).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_samples
from torch import nn

from resa_core.data import fashion_mnist
from resa_core.data.tensors import NORMALIZATION, eval_inputs


def weighted_knn(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
                 k: int, temperature: float, num_classes: int) -> float:
    """Top-1 accuracy (%) of DINO's weighted k-NN on L2-normalised features."""
    train, test = F.normalize(train, dim=1), F.normalize(test, dim=1)
    k = min(k, len(train))
    correct = 0
    for start in range(0, len(test), 1024):
        sims, idx = (test[start:start + 1024] @ train.T).topk(k, dim=1)
        votes = torch.zeros(len(idx), num_classes).scatter_add_(1, train_labels[idx], (sims / temperature).exp())
        correct += (votes.argmax(dim=1) == test_labels[start:start + 1024]).sum().item()
    return 100.0 * correct / len(test)


def clustering_metrics(features: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """SC_mean, SC_std (true labels) and ARI of seeded k-means, Euclidean on L2-normalised features."""
    features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    sc = silhouette_samples(features, labels, metric="euclidean")
    clusters = KMeans(n_clusters=len(np.unique(labels)), random_state=seed, n_init=10).fit_predict(features)
    return {"sc_mean": float(sc.mean()), "sc_std": float(sc.std()), "ari": float(adjusted_rand_score(labels, clusters))}


@torch.no_grad()
def representations(encoder: nn.Module, projector: nn.Sequential, batches, device: torch.device) -> dict:
    """Encoding, each projector hidden layer's output (after its activation) and the embedding."""
    out: dict[str, list[torch.Tensor]] = {}
    for images in batches:
        x = encoder(images.to(device, next(encoder.parameters()).dtype))
        out.setdefault("encoding", []).append(x.float().cpu())
        hidden = 0
        for layer in projector:
            x = layer(x)
            if isinstance(layer, (nn.ReLU, nn.GELU)):
                hidden += 1
                out.setdefault(f"proj_hidden{hidden}", []).append(x.float().cpu())
        out.setdefault("embedding", []).append(x.float().cpu())
    return {name: torch.cat(parts) for name, parts in out.items()}


class _EvalImages(torch.utils.data.Dataset):
    """Resize (short side to size*256/224 above 64 px, else to size) + centre crop + normalise."""

    def __init__(self, data, size: int, stats: str):
        self.data, self.size = data, size
        self.resize = int(round(size * 256 / 224)) if size > 64 else size
        self.mean, self.std = (torch.tensor(v).view(3, 1, 1) for v in NORMALIZATION[stats])

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> torch.Tensor:
        import torchvision.transforms.v2.functional as TF

        image = TF.center_crop(TF.resize(self.data[i][0], self.resize, antialias=True), [self.size, self.size])
        return (TF.pil_to_tensor(image).float() / 255 - self.mean) / self.std


class Monitor:
    """Fixed evaluation subsets, chosen once; ``__call__(method, device)`` returns flat metrics.

    Fashion-MNIST is held in memory as tensors; file-backed datasets are streamed through a
    DataLoader at every evaluation (ImageNet-size subsets do not fit in memory as floats).
    """

    def __init__(self, config: dict):
        data_cfg, mon = config["data"], config["monitor"]
        size, stats, seed = data_cfg["image_size"], data_cfg["normalization"], mon["seed"]
        self.k, self.temperature, self.seed = mon["knn_k"], mon["knn_temperature"], seed
        self.num_workers, self.batch_size = data_cfg["num_workers"], 256
        if data_cfg["name"] == "fashion_mnist":
            train = fashion_mnist.load_subset("train", mon["train_size"], seed, data_cfg["root"])
            test = fashion_mnist.load_subset("test", mon["eval_size"], seed, data_cfg["root"])
            self.train_x, self.test_x = eval_inputs(train.images, size, stats), eval_inputs(test.images, size, stats)
        else:
            from pretrain.data.datasets import open_split

            train = open_split(data_cfg, "train", mon["train_size"], seed)
            test = open_split(data_cfg, "heldout", mon["eval_size"], seed)
            self.train_x, self.test_x = _EvalImages(train, size, stats), _EvalImages(test, size, stats)
        self.train_y, self.test_y = torch.as_tensor(train.labels), torch.as_tensor(test.labels)
        self.num_classes = int(max(self.train_y.max(), self.test_y.max())) + 1

    def _batches(self, source):
        if isinstance(source, torch.Tensor):
            return source.split(self.batch_size)
        return torch.utils.data.DataLoader(source, batch_size=self.batch_size, num_workers=self.num_workers)

    def __call__(self, method: nn.Module, device: torch.device) -> dict:
        encoders = method.transfer_encoders()
        use_momentum = "momentum_encoder" in encoders
        encoder = encoders["momentum_encoder" if use_momentum else "encoder"]
        projector = method.momentum_projector if use_momentum else method.projector
        was_training = method.training
        method.eval()
        try:
            train = representations(encoder, projector, self._batches(self.train_x), device)["encoding"]
            test = representations(encoder, projector, self._batches(self.test_x), device)
        finally:
            method.train(was_training)
        metrics = {"knn_top1": weighted_knn(train, self.train_y, test["encoding"], self.test_y, self.k,
                                            self.temperature, self.num_classes)}
        labels = self.test_y.numpy()
        for name, features in test.items():
            for key, value in clustering_metrics(features.numpy(), labels, self.seed).items():
                metrics[f"{name}/{key}"] = value
        return metrics
