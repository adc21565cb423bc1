"""Logistic-regression transfer (MIRA Table 5, the protocol of Ericsson et al. 2021, CVPR).

As ``linear.py`` of linusericsson/ssl-transfer: a multinomial L2 logistic regression
(scikit-learn, L-BFGS) on frozen features; the inverse strength C = 1 / wd is chosen over
``wd in logspace(-6, 5, 45)`` by the validation score, then the classifier is refitted on
train + val with that C and scored on test. The validation split is the dataset's official
one where it has one (Aircraft, DTD, Flowers-102; VOC2007 too in their code), else a random 20%
of the training set (their ``valid_size=0.2``, shuffled with a fixed seed).

The metric follows the dataset (their ``LINEAR_DATASETS`` table; MIRA Table 5 caption):
mean-per-class accuracy for Pets, Flowers (and Aircraft, Caltech-101), top-1 elsewhere.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from tqdm import tqdm

from downstream.config import require_positive_int
from downstream.features import FeatureSet
from downstream.tasks import Task, TaskContext
from resa_core.errors import UserError

log = logging.getLogger(__name__)
SCHEMA = {
    "wd_min_exp": -6.0,  # ssl-transfer linear.py: wd_range = torch.logspace(-6, 5, 45)
    "wd_max_exp": 5.0,
    "wd_values": 45,
    "valid_fraction": 0.2,  # ssl-transfer get_train_valid_loader(valid_size=0.2) without an official val split
    "max_iter": 1000,  # L-BFGS iterations per fit (sklearn default 100 stops early on 2048-d features)
    "metric": "auto",  # auto (per dataset, below), top1 or mean_per_class
}
MEAN_PER_CLASS_DATASETS = {"pets", "flowers102", "aircraft", "caltech101"}  # ssl-transfer LINEAR_DATASETS
METRICS = ("top1", "mean_per_class")


def mean_per_class_accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the test classes of the per-class recall, in percent (ssl-transfer: confusion matrix)."""
    matrix = confusion_matrix(labels, predictions, labels=np.unique(np.concatenate([labels, predictions])))
    present = matrix.sum(axis=1) > 0
    return float(100.0 * (matrix.diagonal()[present] / matrix.sum(axis=1)[present]).mean())


def score(predictions: np.ndarray, labels: np.ndarray, metric: str) -> float:
    if metric == "mean_per_class":
        return mean_per_class_accuracy(predictions, labels)
    return float(100.0 * np.mean(predictions == labels))


def _fit(features: np.ndarray, labels: np.ndarray, C: float, max_iter: int) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # as ssl-transfer's @ignore_warnings
        return LogisticRegression(C=C, max_iter=max_iter).fit(features, labels)


def validation_split(size: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train positions, val positions): a seeded shuffle, the first ``fraction`` becomes val."""
    order = np.random.default_rng(seed).permutation(size)
    cut = int(np.floor(fraction * size))
    return np.sort(order[cut:]), np.sort(order[:cut])


def select_and_evaluate(
    train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
    c_values: np.ndarray, metric: str, max_iter: int,
) -> dict[str, float]:
    """Pick C on val (first best on ties), refit on train + val, score on test."""
    best_c, best = None, -1.0
    for C in tqdm(c_values, desc="logreg C search", unit="C"):
        value = score(_fit(*train, C, max_iter).predict(val[0]), val[1], metric)
        log.info("C=%.3g val %s=%.2f", C, metric, value)
        if value > best:
            best_c, best = C, value
    trainval = np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]])
    final = _fit(*trainval, best_c, max_iter)
    return {metric: score(final.predict(test[0]), test[1], metric), "val_" + metric: best, "selected_C": best_c}


def _arrays(features: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    return features.features.double().numpy(), features.labels.numpy()


def run(
    features: dict[str, FeatureSet], config: dict, seed: int, context: TaskContext | None = None
) -> dict[str, float]:
    """``seed`` fixes the carved validation split (Ericsson et al. use seed 0); ``context`` names the dataset."""
    metric = config["metric"]
    if metric == "auto":
        dataset = context.dataset.name if context else None
        metric = "mean_per_class" if dataset in MEAN_PER_CLASS_DATASETS else "top1"
    if metric not in METRICS:
        raise UserError(f"config key 'metric' must be auto or one of {METRICS}, got {metric!r}")
    if not 0.0 < config["valid_fraction"] < 1.0:
        raise UserError(f"config key 'valid_fraction' must lie in (0, 1), got {config['valid_fraction']}")
    count = require_positive_int(config, "wd_values")
    c_values = 1.0 / torch.logspace(config["wd_min_exp"], config["wd_max_exp"], count, dtype=torch.float64).numpy()
    train, test = _arrays(features["train"]), _arrays(features["test"])
    if "val" in features:
        val = _arrays(features["val"])
    else:
        keep, held = validation_split(len(train[1]), config["valid_fraction"], seed)
        train, val = (train[0][keep], train[1][keep]), (train[0][held], train[1][held])
    return select_and_evaluate(train, val, test, c_values, metric, require_positive_int(config, "max_iter"))


TASK = Task("logreg-transfer", SCHEMA, ("train", "test"), run, optional_roles=("val",), uses_context=True)
