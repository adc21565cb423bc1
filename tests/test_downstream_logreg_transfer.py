"""Logistic-regression transfer: C chosen on val and refitted on train+val, per-dataset metric."""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from test_downstream_layouts import write_pets

from downstream.cli import main
from downstream.tasks.logreg_transfer import mean_per_class_accuracy, select_and_evaluate, validation_split
from resa_core.data.fashion_mnist import load_subset
from resa_core.errors import run_cli


def test_mean_per_class_accuracy_by_hand():
    labels = np.array([0, 0, 0, 0, 1, 2, 2])
    predictions = np.array([0, 0, 0, 1, 1, 0, 2])
    # class recalls 3/4, 1/1, 1/2 -> mean 75%, while top-1 is 5/7
    assert mean_per_class_accuracy(predictions, labels) == pytest.approx(75.0)


def test_selection_and_refit_equal_a_direct_sklearn_loop():
    data = load_subset("train", 300, 0)
    features = data.images.reshape(len(data.labels), -1)[:, ::8] / 255.0
    keep, held = validation_split(200, 0.25, 0)
    train, val = (features[:200][keep], data.labels[:200][keep]), (features[:200][held], data.labels[:200][held])
    test = features[200:], data.labels[200:]
    c_values = np.array([1e-3, 1e-1, 10.0])
    ours = select_and_evaluate(train, val, test, c_values, "top1", 1000)
    val_scores = [100 * np.mean(LogisticRegression(C=C, max_iter=1000).fit(*train).predict(val[0]) == val[1])
                  for C in c_values]
    best = c_values[int(np.argmax(val_scores))]
    refit = LogisticRegression(C=best, max_iter=1000).fit(np.concatenate([train[0], val[0]]),
                                                          np.concatenate([train[1], val[1]]))
    assert ours["selected_C"] == best and ours["val_top1"] == pytest.approx(max(val_scores))
    assert ours["top1"] == pytest.approx(100 * np.mean(refit.predict(test[0]) == test[1]))


def test_cli_on_pets_layout_reports_mean_per_class(tmp_path):
    root = write_pets(tmp_path / "pets")
    argv = ["logreg-transfer", "--dataset", "pets", "--weights", "pixels", "--run-dir", str(tmp_path / "run"),
            f"data_root={root}", "image_size=16", "resize_size=16", "wd_values=3", "num_workers=0"]
    with pytest.raises(SystemExit) as info:
        run_cli(main, argv)
    assert info.value.code == 0
    (path,) = (tmp_path / "run" / "records").rglob("seed0.json")
    record = json.loads(path.read_text())
    assert record["task"] == "logreg-transfer" and record["status"] == "ok"
    assert set(record["metrics"]) == {"mean_per_class", "val_mean_per_class", "selected_C"}
