"""Logistic-regression transfer on multi-label VOC2007 (11-point mAP), and the Caltech-101 / SUN397 readers.

The VOC2007 fixture is written in the real VOCdevkit layout (JPEGImages, Annotations/*.xml,
ImageSets/Main/<split>.txt) with real images: Fashion-MNIST digits of clothing, upscaled to RGB JPEGs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import precision_recall_curve

from downstream.cli import main
from downstream.tasks.logreg_transfer import select_and_evaluate_multilabel, voc07_average_precision
from resa_core.data.catalog import VOC_CLASSES, multilabel_targets, open_dataset
from resa_core.data.fashion_mnist import load_subset
from resa_core.errors import UserError, run_cli

SPLITS = {"train": 24, "val": 12, "test": 12}


def voc_objects(label: int) -> list[tuple[str, int]]:
    """(class, difficult) objects of a fixture image from its Fashion-MNIST label: one of three classes, + person."""
    objects = [(("bicycle", "bird", "boat")[label % 3], 0)]
    if label >= 5:
        objects.append(("person", int(label == 9)))  # a difficult object still makes the image positive
    return objects


def write_voc2007(root: Path) -> Path:
    """``root/VOCdevkit/VOC2007`` with 48 real images split train/val/test (trainval = train + val)."""
    base = root / "VOCdevkit" / "VOC2007"
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / folder).mkdir(parents=True)
    data = load_subset("train", sum(SPLITS.values()), 0)
    order = np.random.default_rng(0).permutation(len(data.labels))
    position, lists = 0, {}
    for split, count in SPLITS.items():
        lists[split] = []
        for index in order[position:position + count]:
            image_id = f"{int(index):06d}"
            grey = Image.fromarray(data.images[index]).resize((40, 40))
            Image.merge("RGB", (grey, grey.transpose(Image.FLIP_LEFT_RIGHT), grey)).save(
                base / "JPEGImages" / f"{image_id}.jpg", quality=90)
            objects = "".join(
                f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
                f"<difficult>{difficult}</difficult><bndbox><xmin>2</xmin><ymin>3</ymin><xmax>30</xmax>"
                f"<ymax>35</ymax></bndbox></object>" for name, difficult in voc_objects(int(data.labels[index])))
            (base / "Annotations" / f"{image_id}.xml").write_text(
                f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"
                f"<size><width>40</width><height>40</height><depth>3</depth></size>{objects}</annotation>")
            lists[split].append(image_id)
        position += count
    lists["trainval"] = sorted(lists["train"] + lists["val"])
    for split, ids in lists.items():
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(sorted(ids)) + "\n")
    return root


def devkit_ap(out: np.ndarray, gt: np.ndarray) -> float:
    """Direct transcription of VOCdevkit 2007 ``VOCcode/VOCevalcls.m`` (gt: +1 positive, -1 negative, 0 ignored).

    [so,si]=sort(-out); tp=gt(si)>0; fp=gt(si)<0; fp=cumsum(fp); tp=cumsum(tp);
    rec=tp/sum(gt>0); prec=tp./(fp+tp);
    ap=0; for t=0:0.1:1, p=max(prec(rec>=t)); if isempty(p), p=0; end; ap=ap+p/11; end
    """
    si = np.argsort(-out, kind="stable")  # MATLAB's sort is stable
    tp, fp = gt[si] > 0, gt[si] < 0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / np.sum(gt > 0)
    with np.errstate(invalid="ignore"):
        prec = tp / (fp + tp)
    ap = 0.0
    for t in np.arange(11) * 0.1:
        p = prec[rec >= t]
        ap += (np.max(p) if p.size else 0.0) / 11
    return float(ap)


def test_11_point_ap_by_hand():
    # ranks: +, -, +, -, -  -> precision 1, 1/2, 2/3, 1/2, 2/5 at recall 1/2, 1/2, 1, 1, 1
    # t = 0..0.5 (6 points): max precision 1; t = 0.6..1 (5 points): 2/3  -> (6 + 5 * 2/3) / 11
    scores, positives = np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.array([1, 0, 1, 0, 0])
    assert voc07_average_precision(scores, positives) == pytest.approx((6 + 10 / 3) / 11)
    assert voc07_average_precision(scores[::-1], positives[::-1]) == pytest.approx((6 + 10 / 3) / 11)
    assert voc07_average_precision(np.array([0.1, 0.9]), np.array([1, 0])) == pytest.approx(0.5)  # 11 * (1/2) / 11
    assert voc07_average_precision(np.array([3.0, 2.0, 1.0]), np.array([1, 1, 0])) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(6))
def test_11_point_ap_equals_the_devkit_transcription(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(5, 60))
    positives = (rng.random(size) < 0.3).astype(int)
    positives[rng.integers(size)] = 1
    scores = rng.normal(size=size) + positives * rng.random()
    if seed % 2:
        scores = np.round(scores, 1)  # ties: both keep the input order
    assert voc07_average_precision(scores, positives) == pytest.approx(devkit_ap(scores, 2 * positives - 1))
    if seed % 2 == 0 and positives[np.argmax(scores)]:  # Ericsson et al.'s voc_ap agrees without ties / top negative
        precision, recall, _ = precision_recall_curve(positives, scores)
        theirs = sum(np.max(precision[recall >= t]) if np.any(recall >= t) else 0 for t in np.linspace(0, 1, 11)) / 11
        assert voc07_average_precision(scores, positives) == pytest.approx(theirs)


def test_voc2007_layout_gives_multilabel_bit_masks(tmp_path):
    write_voc2007(tmp_path)
    data = open_dataset("voc2007", "trainval", tmp_path)
    assert data.class_names == VOC_CLASSES and len(data) == 36 and data[0][0].mode == "RGB"
    targets = multilabel_targets(data.labels)
    assert targets.shape == (36, 20) and set(np.unique(targets)) <= {0, 1}
    first = Path(data.files[0]).stem
    expected = {name for name, _ in voc_objects(int(load_subset("train", 48, 0).labels[int(first)]))}
    assert {VOC_CLASSES[c] for c in np.flatnonzero(targets[0])} == expected
    assert multilabel_targets(np.array([0, 1 | 1 << 14]))[1].nonzero()[0].tolist() == [0, 14]
    assert open_dataset("voc2007", "train", tmp_path / "VOCdevkit" / "VOC2007").labels.tolist() == \
        open_dataset("voc2007", "train", tmp_path).labels.tolist()


def test_multilabel_selection_matches_a_per_class_loop():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 5))
    targets = (features[:, :3] + 0.5 * rng.normal(size=(60, 3)) > 0.3).astype(np.int64)
    train, val, test = ((features[s], targets[s]) for s in (slice(0, 30), slice(30, 45), slice(45, 60)))
    ours = select_and_evaluate_multilabel(train, val, test, np.array([1e-3, 1.0]), 1000)
    assert set(ours) == {"map11", "val_map11", "selected_C"} and 0 <= ours["map11"] <= 100
    from sklearn.linear_model import LogisticRegression

    def m_ap(fit_on, score_on, C):
        return 100 * np.mean([devkit_ap(LogisticRegression(C=C, max_iter=1000).fit(fit_on[0], fit_on[1][:, k])
                                        .decision_function(score_on[0]), 2 * score_on[1][:, k] - 1)
                              for k in range(3)])

    val_scores = [m_ap(train, val, C) for C in (1e-3, 1.0)]
    best = (1e-3, 1.0)[int(np.argmax(val_scores))]
    trainval = np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]])
    assert ours["selected_C"] == best and ours["val_map11"] == pytest.approx(max(val_scores))
    assert ours["map11"] == pytest.approx(m_ap(trainval, test, best))


def _run(tmp_path, *extra):
    argv = ["logreg-transfer", "--dataset", "voc2007", "--weights", "pixels", "--run-dir", str(tmp_path / "run"),
            f"data_root={tmp_path / 'voc'}", "image_size=16", "resize_size=16", "wd_values=3", "num_workers=0",
            *extra]
    with pytest.raises(SystemExit) as info:
        run_cli(main, argv)
    return info.value.code


def test_cli_on_voc2007_layout_reports_map11(tmp_path):
    write_voc2007(tmp_path / "voc")
    assert _run(tmp_path) == 0
    (path,) = (tmp_path / "run" / "records").rglob("seed0.json")
    record = json.loads(path.read_text())
    assert record["task"] == "logreg-transfer" and record["status"] == "ok" and record["dataset"] == "voc2007"
    assert set(record["metrics"]) == {"map11", "val_map11", "selected_C"}
    assert 0.0 < record["metrics"]["map11"] <= 100.0


def test_voc2007_rejects_single_label_metrics_and_tasks(tmp_path, capsys):
    write_voc2007(tmp_path / "voc")
    assert _run(tmp_path, "metric=top1") == 2
    assert "multi-label" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        run_cli(main, ["knn", "--dataset", "voc2007", "--weights", "pixels", "--run-dir", str(tmp_path / "run"),
                       f"data_root={tmp_path / 'voc'}"])
    assert info.value.code == 2 and "multi-label" in capsys.readouterr().err


@pytest.mark.parametrize("name,needle", [("voc2007", "VOC2007/"), ("caltech101", "101_ObjectCategories"),
                                         ("sun397", "Training_01.txt")])
def test_missing_roots_give_one_line_errors(tmp_path, name, needle):
    for root in (tmp_path / "absent", tmp_path):  # no such directory / a directory without the layout
        with pytest.raises(UserError) as info:
            open_dataset(name, "test", root)
        message = str(info.value)
        assert "\n" not in message and needle in message and "expected layout" in message


def test_cli_missing_voc_root_exits_2_with_one_line(tmp_path, capsys):
    assert _run(tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "VOC2007" in err[-1]


def _jpeg(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (value, 255 - value, 128)).save(path)


def test_caltech101_thirty_per_class_train_rest_test(tmp_path):
    folder = tmp_path / "caltech101" / "101_ObjectCategories"
    counts = {"BACKGROUND_Google": 31, "accordion": 33, "airplanes": 40}
    for name, count in counts.items():
        for i in range(1, count + 1):
            _jpeg(folder / name / f"image_{i:04d}.jpg", i)
    train, test = (open_dataset("caltech101", split, tmp_path) for split in ("train", "test"))
    assert train.class_names == tuple(sorted(counts)) and len(train) == 90 and len(test) == 104 - 90
    assert np.bincount(train.labels).tolist() == [30, 30, 30] and np.bincount(test.labels).tolist() == [1, 3, 10]
    assert not set(train.files) & set(test.files)
    assert open_dataset("caltech101", "train", tmp_path).files == train.files  # seeded, fixed split


def test_sun397_partition_one(tmp_path):
    base = tmp_path / "SUN397"
    base.mkdir()
    (base / "ClassName.txt").write_text("/a/abbey\n/b/bakery\n")
    files = {f"/{c[0]}/{c}/sun_{c}{i}.jpg": c for c in ("abbey", "bakery") for i in range(3)}
    for offset, relative in enumerate(files):
        _jpeg(base / relative.lstrip("/"), offset * 20)
    (base / "Training_01.txt").write_text("\n".join(list(files)[0::2]) + "\n")
    (base / "Testing_01.txt").write_text("\n".join(list(files)[1::2]) + "\n")
    train, test = (open_dataset("sun397", split, tmp_path) for split in ("train", "test"))
    assert train.class_names == ("abbey", "bakery") and len(train) == 3 and len(test) == 3
    assert sorted(train.labels.tolist() + test.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert not set(train.files) & set(test.files)
