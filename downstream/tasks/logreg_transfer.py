"""Logistic-regression transfer (MIRA Table 5, the protocol of Ericsson et al. 2021, CVPR).

As ``linear.py`` of linusericsson/ssl-transfer: a multinomial L2 logistic regression
(scikit-learn, L-BFGS, default ``max_iter``) on frozen features; the inverse strength C = 1 / wd
is chosen over ``wd in logspace(-6, 5, 45)`` by the validation score, then the classifier is
refitted on train + val with that C and scored on test. Their one ``LogReg(..., warm_start=True)``
object serves every fit of a run (``LogisticRegression`` / ``LinearTester``): each fit of the C sweep
starts from the previous C's solution, in increasing wd order, and the final refit from the last
one's; we reuse one classifier the same way (``warm_start`` key). Their images are resized
to 224 (bicubic) and centre-cropped to 224 with ImageNet statistics (``get_train_valid_loader`` /
``get_test_loader``, ``--image-size 224``): the task's image view below. The validation split is the dataset's official
one where it has one (Aircraft, DTD, Flowers-102; VOC2007 too in their code), else a random 20%
of the training set (their ``valid_size=0.2``, shuffled with a fixed seed).

The metric follows the dataset (their ``LINEAR_DATASETS`` table; MIRA Table 5 caption):
mean-per-class accuracy for Pets, Flowers (and Aircraft, Caltech-101), top-1 elsewhere.

VOC2007 is multi-label (their ``'mAP'`` metric): one binary L2 logistic regression per class
(one-vs-rest, all with the same C), ranked by ``decision_function``; C is chosen on the official
val split by the mean AP and the refit on trainval is scored on test as the PASCAL VOC 2007
11-point interpolated AP averaged over the 20 classes, in percent (``map11``). The AP follows
the VOC2007 devkit's ``VOCcode/VOCevalcls.m`` (Everingham et al., VOCdevkit_08-Jun-2007):
scores sorted in decreasing order, ``rec = cumsum(tp) / npos``, ``prec = cumsum(tp) / (cumsum(tp) +
cumsum(fp))``, ``ap = sum over t in 0:0.1:1 of max(prec(rec >= t)) / 11`` (0 where no recall reaches t).
Ericsson et al. compute the same sum (``voc_ap``) from scikit-learn's ``precision_recall_curve``,
which differs from the devkit only where scores tie (it merges them) and at t = 0 when the top-scored
image is negative (its curve starts at precision 1, recall 0).
"""

from __future__ import annotations

import copy
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
from resa_core.data.catalog import VOC_CLASSES, multilabel_targets
from resa_core.errors import UserError

log = logging.getLogger(__name__)
SCHEMA = {
    "wd_min_exp": -6.0,  # ssl-transfer linear.py: wd_range = torch.logspace(-6, 5, 45)
    "wd_max_exp": 5.0,
    "wd_values": 45,
    "valid_fraction": 0.2,  # ssl-transfer get_train_valid_loader(valid_size=0.2) without an official val split
    "max_iter": 100,  # L-BFGS iterations per fit: sklearn's default, which ssl-transfer's LogReg keeps
    "warm_start": True,  # ssl-transfer linear.py: LogReg(solver='lbfgs', multi_class='multinomial', warm_start=True)
    "metric": "auto",  # auto (per dataset, below), top1, mean_per_class; map11 (multi-label VOC2007)
}
MEAN_PER_CLASS_DATASETS = {"pets", "flowers102", "aircraft", "caltech101"}  # ssl-transfer LINEAR_DATASETS
METRICS = ("top1", "mean_per_class")
MULTILABEL_DATASETS = {"voc2007": len(VOC_CLASSES)}  # bit-mask labels (resa_core.data.catalog.multilabel_targets)
MULTILABEL_METRICS = ("map11",)


def voc07_average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """PASCAL VOC 2007 11-point interpolated AP (devkit ``VOCevalcls.m``), a fraction in [0, 1].

    ``positives``: 1 where the image holds the class, 0 otherwise (the devkit's gt > 0 / gt < 0;
    its gt = 0 "difficult only" images are not used here). Ties keep input order (MATLAB's stable sort).
    """
    scores, positives = np.asarray(scores, dtype=np.float64), np.asarray(positives) > 0
    order = np.argsort(-scores, kind="stable")
    tp, fp = np.cumsum(positives[order]), np.cumsum(~positives[order])
    recall = tp / max(int(positives.sum()), 1)
    precision = tp / np.maximum(tp + fp, 1)
    total = 0.0
    for threshold in np.linspace(0.0, 1.0, 11):
        reached = recall >= threshold  # thresholds as Ericsson et al.'s np.linspace(0, 1, 11)
        total += float(precision[reached].max()) if reached.any() else 0.0
    return total / 11.0


def _fit_multilabel(classifier: LogisticRegression, features: np.ndarray, targets: np.ndarray) -> list:
    """One binary L2 logistic regression per class (a constant score where the class has one label value).

    ssl-transfer fits its one classifier class after class (``fit_logistic_regression``, ``'mAP'``):
    with ``warm_start`` each class starts from the previous class's solution; a copy keeps each fit.
    """
    models = []
    for column in targets.T:
        models.append(copy.deepcopy(_fit(classifier, features, column)) if len(np.unique(column)) == 2
                      else float(column[0]))
    return models


def _map11(models: list, features: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes with a positive test image of the 11-point AP of the decision scores, in percent."""
    aps = []
    for model, column in zip(models, targets.T, strict=True):
        if column.sum() == 0:
            continue  # the devkit's AP is undefined without positives
        scores = model.decision_function(features) if not isinstance(model, float) else np.full(len(column), model)
        aps.append(voc07_average_precision(scores, column))
    return float(100.0 * np.mean(aps)) if aps else 0.0


def select_and_evaluate_multilabel(
    train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
    c_values: np.ndarray, max_iter: int, warm_start: bool = True,
) -> dict[str, float]:
    """As :func:`select_and_evaluate` with ``(N, classes)`` 0/1 targets, one-vs-rest, scored by ``map11``."""
    classifier = new_classifier(max_iter, warm_start)
    best_c, best = None, -1.0
    for C in tqdm(c_values, desc="logreg C search (one-vs-rest)", unit="C"):
        value = _map11(_fit_multilabel(classifier.set_params(C=C), *train), *val)
        log.info("C=%.3g val map11=%.2f", C, value)
        if value > best:
            best_c, best = C, value
    trainval = np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]])
    final = _fit_multilabel(classifier.set_params(C=best_c), *trainval)
    return {"map11": _map11(final, *test), "val_map11": best, "selected_C": best_c}


def mean_per_class_accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the test classes of the per-class recall, in percent (ssl-transfer: confusion matrix)."""
    matrix = confusion_matrix(labels, predictions, labels=np.unique(np.concatenate([labels, predictions])))
    present = matrix.sum(axis=1) > 0
    return float(100.0 * (matrix.diagonal()[present] / matrix.sum(axis=1)[present]).mean())


def score(predictions: np.ndarray, labels: np.ndarray, metric: str) -> float:
    if metric == "mean_per_class":
        return mean_per_class_accuracy(predictions, labels)
    return float(100.0 * np.mean(predictions == labels))


def new_classifier(max_iter: int, warm_start: bool) -> LogisticRegression:
    """The one classifier of a run (L-BFGS, multinomial for > 2 classes: sklearn's defaults)."""
    return LogisticRegression(max_iter=max_iter, warm_start=warm_start)


def _fit(classifier: LogisticRegression, features: np.ndarray, labels: np.ndarray) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # as ssl-transfer's @ignore_warnings
        return classifier.fit(features, labels)


def validation_split(size: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train positions, val positions): a seeded shuffle, the first ``fraction`` becomes val."""
    order = np.random.default_rng(seed).permutation(size)
    cut = int(np.floor(fraction * size))
    return np.sort(order[cut:]), np.sort(order[:cut])


def select_and_evaluate(
    train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
    c_values: np.ndarray, metric: str, max_iter: int, warm_start: bool = True,
) -> dict[str, float]:
    """Pick C on val (first best on ties), refit on train + val, score on test (one classifier throughout)."""
    classifier = new_classifier(max_iter, warm_start)
    best_c, best = None, -1.0
    for C in tqdm(c_values, desc="logreg C search", unit="C"):
        value = score(_fit(classifier.set_params(C=C), *train).predict(val[0]), val[1], metric)
        log.info("C=%.3g val %s=%.2f", C, metric, value)
        if value > best:
            best_c, best = C, value
    trainval = np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]])
    final = _fit(classifier.set_params(C=best_c), *trainval)
    return {metric: score(final.predict(test[0]), test[1], metric), "val_" + metric: best, "selected_C": best_c}


def _arrays(features: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    return features.features.double().numpy(), features.labels.numpy()


def run(
    features: dict[str, FeatureSet], config: dict, seed: int, context: TaskContext | None = None
) -> dict[str, float]:
    """``seed`` fixes the carved validation split (Ericsson et al. use seed 0); ``context`` names the dataset."""
    metric = config["metric"]
    dataset = context.dataset.name if context else None
    multilabel = dataset in MULTILABEL_DATASETS
    if metric == "auto":
        metric = "map11" if multilabel else "mean_per_class" if dataset in MEAN_PER_CLASS_DATASETS else "top1"
    if multilabel and metric not in MULTILABEL_METRICS:
        raise UserError(f"dataset {dataset!r} is multi-label: 'metric' must be auto or map11, got {metric!r}")
    if not multilabel and metric in MULTILABEL_METRICS:
        raise UserError(f"metric '{metric}' needs a multi-label dataset ({', '.join(sorted(MULTILABEL_DATASETS))})")
    if not multilabel and metric not in METRICS:
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
    max_iter = require_positive_int(config, "max_iter")
    if not isinstance(config["warm_start"], bool):
        raise UserError(f"config key 'warm_start' must be true or false, got {config['warm_start']!r}")
    if multilabel:
        classes = MULTILABEL_DATASETS[dataset]
        train, val, test = ((pair[0], multilabel_targets(pair[1], classes)) for pair in (train, val, test))
        return select_and_evaluate_multilabel(train, val, test, c_values, max_iter, config["warm_start"])
    return select_and_evaluate(train, val, test, c_values, metric, max_iter, config["warm_start"])


# ssl-transfer linear.py get_train_valid_loader / get_test_loader at --image-size 224: Resize(224, BICUBIC),
# CenterCrop(224), ImageNet mean/std (prepare_data's normalise_dict), CIFAR included.
IMAGE_VIEW = {"image_size": 224, "resize_size": 224, "resize_interpolation": "bicubic", "normalization": "imagenet"}
TASK = Task(
    "logreg-transfer", SCHEMA, ("train", "test"), run, optional_roles=("val",), uses_context=True, multilabel=True,
    image_view=IMAGE_VIEW,
)
