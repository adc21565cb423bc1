"""DSA Table VI's CUB protocol: cross-domain few-shot on the 50 novel classes (issue 15 item 13).

The novel classes are Chen et al. 2019's (wyharveychen/CloserLookFewShot
``filelists/CUB/write_CUB_filelist.py``: class folders sorted, ``novel`` when ``i % 4 == 3``):
with CUB's ``NNN.Name`` folders these are 004, 008, ..., 200. Every image of those classes is used.
"""

import json
from pathlib import Path

import pytest
from conftest import repo_path
from test_downstream_layouts import write_cub

from downstream.cli import main
from resa_core.data.catalog import open_dataset
from resa_core.errors import UserError, run_cli
from results.layout import load_layout

NOVEL = [f"{i:03d}.Bird_{i}" for i in range(4, 201, 4)]  # sorted index 3, 7, ..., 199


@pytest.fixture(scope="module")
def cub2011(tmp_path_factory):
    return write_cub(tmp_path_factory.mktemp("cub"), classes=200, per_class=3)


def test_novel_split_of_cub_200_2011_is_every_image_of_the_50_novel_classes(cub2011):
    data = open_dataset("cub200_novel", "test", cub2011)
    assert data.class_names == tuple(NOVEL) and len(data) == 50 * 3  # train and test images alike
    assert sorted({Path(f).parent.name for f in data.files}) == NOVEL
    assert all(data.class_names[label] == Path(f).parent.name for f, label in zip(data.files, data.labels,
                                                                                   strict=True))


def test_novel_split_of_the_original_cub_200_layout(tmp_path):
    for i in range(1, 201):  # CUB-200 (2010): images/<NNN.Name>/<image>.jpg, no index files
        folder = tmp_path / "images" / f"{i:03d}.Bird_{i}"
        folder.mkdir(parents=True)
        for k in range(2):
            (folder / f"Bird_{i}_{k}.jpg").touch()
    data = open_dataset("cub200_novel", "test", tmp_path)
    assert data.class_names == tuple(NOVEL) and len(data) == 100


def test_a_partial_class_list_is_refused(tmp_path):
    write_cub(tmp_path, classes=12, per_class=1)
    with pytest.raises(UserError, match="needs all 200 class folders"):
        open_dataset("cub200_novel", "test", tmp_path)


def test_fewshot_cli_and_dsa_table_use_the_novel_split(cub2011, tmp_path):
    argv = ["fewshot", "--dataset", "cub200_novel", "--weights", "pixels", "--run-dir", str(tmp_path),
            f"data_root={cub2011}", "image_size=16", "shots=[1]", "queries=2", "episodes=20", "num_workers=0"]
    with pytest.raises(SystemExit) as info:
        run_cli(main, argv)
    assert info.value.code == 0
    (path,) = (tmp_path / "records" / "fewshot" / "cub200_novel").rglob("seed0.json")
    assert json.loads(path.read_text())["status"] == "ok"
    layout = load_layout(repo_path("results/tables/dsa_table6.yaml"))
    cub = [column for column in layout.columns if column.label.startswith("CUB200")]
    assert len(cub) == 2 and {column.dataset for column in cub} == {"cub200_novel"}
