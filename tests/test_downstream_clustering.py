"""Clustering analysis: metrics against the formulas of ReSA Appendix A / DSA, projector rebuild, CLI."""

import json
from itertools import combinations
from math import comb

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from test_downstream_layouts import write_cifar100

from downstream.cli import main
from downstream.cluster_metrics import KMEANS_INITS, class_separation, kmeans_ari, silhouette_stats
from downstream.projector import projector_from_checkpoint, projector_layers
from pretrain.heads import mlp
from pretrain.models import build_backbone
from resa_core.errors import run_cli


def _transcribed_silhouettes(points, labels):
    """ReSA Def. A.1: sc = (b - a) / max(a, b), a = mean distance to the own class, b = nearest other class."""
    values = []
    for i, point in enumerate(points):
        distance = {c: [np.linalg.norm(point - points[j]) for j in range(len(points))
                        if labels[j] == c and j != i] for c in set(labels)}
        a = np.mean(distance[labels[i]])
        b = min(np.mean(d) for c, d in distance.items() if c != labels[i])
        values.append((b - a) / max(a, b))
    return np.array(values)


def _transcribed_ari(truth, predicted):
    """ReSA Def. A.2, the contingency-table formula."""
    n = {(t, p): 0 for t in set(truth) for p in set(predicted)}
    for t, p in zip(truth, predicted, strict=True):
        n[(t, p)] += 1
    index = sum(comb(v, 2) for v in n.values())
    a = sum(comb(sum(v for (t, _), v in n.items() if t == ti), 2) for ti in set(truth))
    b = sum(comb(sum(v for (_, p), v in n.items() if p == pj), 2) for pj in set(predicted))
    expected = a * b / comb(len(truth), 2)
    return (index - expected) / (0.5 * (a + b) - expected)


def test_silhouette_and_ari_equal_the_appendix_formulas():
    generator = torch.Generator().manual_seed(0)
    labels = np.repeat(np.arange(3), 12)
    features = torch.randn(36, 5, generator=generator) + 2.0 * F.one_hot(torch.as_tensor(labels), 5)
    unit = F.normalize(features.double(), dim=1).numpy()
    reference = _transcribed_silhouettes(unit, labels)
    assert silhouette_stats(features, labels) == pytest.approx((reference.mean(), reference.std()))
    clusters = KMeans(n_clusters=3, n_init=KMEANS_INITS, random_state=4).fit_predict(unit)
    assert kmeans_ari(features, labels, 4) == pytest.approx(_transcribed_ari(labels, clusters))


def test_dsa_class_separation_by_hand():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    labels = np.array([0, 0, 1, 1])
    # means (.5, .5) and (-.5, -.5): distance sqrt(2); each point is sqrt(.5) from its mean -> var .5
    inter, intra = class_separation(features, labels)
    assert inter == pytest.approx(np.sqrt(2.0)) and intra == pytest.approx(0.5)
    means = [np.array([1, 0]), np.array([0, 1]), np.array([-1, 0])]
    inter3, _ = class_separation(torch.tensor(np.stack(means), dtype=torch.float64), np.arange(3))
    assert inter3 == pytest.approx(np.mean([np.linalg.norm(a - b) for a, b in combinations(means, 2)]))


def _checkpoint(path, projector, momentum_projector):
    encoder = build_backbone("resnet18")
    model = {f"projector.{k}": v for k, v in projector.state_dict().items()}
    model |= {f"momentum_projector.{k}": v for k, v in momentum_projector.state_dict().items()}
    torch.save({"format_version": 1, "method": "resa", "arch": "resnet18", "encoder": encoder.state_dict(),
                "momentum_encoder": encoder.state_dict(), "config": {}, "epoch": 1, "global_step": 1,
                "train_state": {"model": model}}, path)
    return path


def test_projector_rebuilt_from_checkpoint_equals_the_pretrain_head(tmp_path):
    torch.manual_seed(0)
    online, momentum = mlp(512, 64, 16, 3, "bn_relu", True), mlp(512, 64, 16, 3, "bn_relu", True)
    for head in (online, momentum):  # non-trivial running statistics
        head.train()(torch.randn(32, 512))
    rebuilt = projector_from_checkpoint(_checkpoint(tmp_path / "c.pt", online, momentum))
    encodings = torch.randn(10, 512)
    layers = projector_layers(rebuilt, encodings)
    momentum.eval()
    assert set(layers) == {"hidden0", "hidden1", "embedding"}
    torch.testing.assert_close(layers["embedding"], momentum(encodings))
    torch.testing.assert_close(layers["hidden0"], momentum[:3](encodings))
    assert projector_from_checkpoint(tmp_path / "c.pt") is not None
    (tmp_path / "x.pt").write_bytes(b"not torch")
    assert projector_from_checkpoint(tmp_path / "x.pt") is None


def test_cli_clustering_on_fashion_mnist_checkpoint(tmp_path):
    torch.manual_seed(0)
    heads = [mlp(512, 64, 16, 3, "bn_relu", True) for _ in range(2)]
    checkpoint = _checkpoint(tmp_path / "resa.pt", *heads)
    argv = ["clustering", "--dataset", "fashion_mnist", "--weights", str(checkpoint), "--run-dir",
            str(tmp_path / "run"), "train_size=200", "test_size=100", "samples=100", "tsne_samples=60"]
    with pytest.raises(SystemExit) as info:
        run_cli(main, argv)
    assert info.value.code == 0
    (path,) = (tmp_path / "run" / "records" / "clustering").rglob("seed0.json")
    metrics = json.loads(path.read_text())["metrics"]
    for layer in ("encoding", "hidden0", "hidden1", "embedding"):
        assert -1.0 <= metrics[f"sc_mean_{layer}"] <= 1.0 and -0.5 <= metrics[f"ari_{layer}"] <= 1.0
        assert metrics[f"inter_class_dist_{layer}"] > 0 and 0 <= metrics[f"intra_class_var_{layer}"] <= 1.0
    (png,) = (tmp_path / "run" / "plots" / "clustering").rglob("*.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_clustering_pixels_on_cifar100_draws_superclass_hulls(tmp_path):
    root = write_cifar100(tmp_path / "cifar", repeats=3)
    argv = ["clustering", "--dataset", "cifar100", "--weights", "pixels", "--run-dir", str(tmp_path / "run"),
            f"data_root={root}", "samples=60", "tsne_samples=60", "num_workers=0"]
    with pytest.raises(SystemExit) as info:
        run_cli(main, argv)
    assert info.value.code == 0
    (path,) = (tmp_path / "run" / "records" / "clustering").rglob("seed0.json")
    assert set(json.loads(path.read_text())["metrics"]) == {
        f"{name}_encoding" for name in ("sc_mean", "sc_std", "ari", "inter_class_dist", "intra_class_var")}
    assert len(list((tmp_path / "run" / "plots").rglob("*.png"))) == 1
