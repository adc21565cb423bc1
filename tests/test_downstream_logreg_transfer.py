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


def ssl_transfer_loop(train, val, test, c_values, max_iter):
    """linusericsson/ssl-transfer linear.py transcribed: ONE LogReg(warm_start=True) for the whole run
    (LinearTester.validate sets C and fits per wd, evaluate sets the best C and refits on trainval)."""
    clf = LogisticRegression(max_iter=max_iter, warm_start=True)
    val_scores = []
    for C in c_values:
        clf.set_params(C=C)
        val_scores.append(100 * np.mean(clf.fit(*train).predict(val[0]) == val[1]))
    best = c_values[int(np.argmax(val_scores))]
    clf.set_params(C=best)
    clf.fit(np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]]))
    return best, max(val_scores), 100 * np.mean(clf.predict(test[0]) == test[1])


@pytest.mark.parametrize("max_iter", [5, 100])  # 5: far from convergence, where warm starts matter most
def test_selection_and_refit_equal_ssl_transfers_warm_started_loop(max_iter):
    data = load_subset("train", 300, 0)
    features = data.images.reshape(len(data.labels), -1)[:, ::8] / 255.0
    keep, held = validation_split(200, 0.25, 0)
    train, val = (features[:200][keep], data.labels[:200][keep]), (features[:200][held], data.labels[:200][held])
    test = features[200:], data.labels[200:]
    c_values = 1.0 / np.logspace(-6, 5, 9)  # ssl-transfer's order: wd increasing, C decreasing
    ours = select_and_evaluate(train, val, test, c_values, "top1", max_iter)
    best, val_score, test_score = ssl_transfer_loop(train, val, test, c_values, max_iter)
    assert ours["selected_C"] == best and ours["val_top1"] == pytest.approx(val_score)
    assert ours["top1"] == pytest.approx(test_score)


def test_each_fit_starts_from_the_previous_solution(monkeypatch):
    """warm_start over the C sweep and into the refit, as ssl-transfer's single LogReg object."""
    import downstream.tasks.logreg_transfer as logreg

    starts, ends = [], []

    class Spy(LogisticRegression):
        def fit(self, X, y):
            start = getattr(self, "coef_", None)
            starts.append(start.copy() if start is not None and self.warm_start else None)
            super().fit(X, y)
            ends.append(self.coef_.copy())
            return self

    monkeypatch.setattr(logreg, "LogisticRegression", Spy)
    rng = np.random.default_rng(0)
    split = [(rng.normal(size=(n, 6)), np.arange(n) % 3) for n in (30, 15, 15)]
    select_and_evaluate(*split, np.array([10.0, 1.0, 0.1]), "top1", 3)
    assert len(starts) == 4 and starts[0] is None
    for start, previous in zip(starts[1:], ends[:-1], strict=True):
        assert start is not None and np.array_equal(start, previous)
    assert logreg.SCHEMA["max_iter"] == 100  # sklearn's default, which ssl-transfer's LogReg keeps


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
