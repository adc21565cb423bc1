"""Tests of the results stage: records -> cells -> Markdown/CSV/PNG, layouts, and the CLI.

Records are written by :func:`write_record` exactly as docs/contracts.md §3 lays them out, with
chosen metric values: the renderer is under test here, not the evaluations.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from downstream.record import build_record, protocol_of, record_path
from resa_core.errors import UserError
from results.aggregate import aggregate_cells
from results.knn_plot import knn_lines
from results.layout import load_layout
from results.records import load_records
from results.table import build_table

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASET = "fashion_mnist"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_record(run: Path, task: str, name: str, seed: int, metrics: dict, *, status: str = "ok",
                 error: str | None = None, dataset: str = DATASET, code_version: str = "abc1234",
                 protocol: dict | None = None, pretrain_epochs: int = 6, sha_of: str | None = None) -> Path:
    """Write a record with downstream's writer at ``records/<task>/<dataset>/<protocol-sha8>/<sha8>/seed<S>.json``.

    ``protocol``: task-config values (protocol keys of ``task``) the run used; ``sha_of``: the text whose
    hash is the backbone's sha256 (default: the name), to make two backbones of one name.
    """
    sha256 = hashlib.sha256((sha_of or name).encode()).hexdigest()
    config = {"task": task, "seed": seed, **(protocol or {})}
    backbone = {"name": name, "path": f"/ckpt/{name}.pth", "sha256": sha256, "method": name,
                "arch": "resnet18", "pretrain_epochs": pretrain_epochs}
    record = build_record(task, dataset, seed, backbone, config, "2025-01-01T00:00:00Z",
                          metrics=None if status == "failed" else metrics, error=error if status == "failed" else None)
    record.update(metrics=metrics, code_version=code_version, host="testhost")  # a failed record may carry metrics
    path = record_path(run, task, dataset, sha256, seed, protocol_of(task, config))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run with two resa seeds, one infonce seed plus a failed one, a failed random linear, no pixels."""
    for seed, shift in ((0, 0.0), (1, 2.0)):
        write_record(tmp_path, "knn", "resa", seed, {"top1_k5": 78.0 + shift, "top1_k10": 79.0 + shift,
                                                     "top1_k20": 80.0 + shift, "top5_k20": 98.0 + shift})
        write_record(tmp_path, "linear", "resa", seed, {"top1": 85.0 + shift, "top5": 99.0})
    write_record(tmp_path, "fewshot", "resa", 0, {"acc_5way1shot": 60.0, "ci95_5way1shot": 0.8,
                                                  "acc_5way5shot": 75.0, "ci95_5way5shot": 0.5})
    write_record(tmp_path, "knn", "infonce", 0, {"top1_k5": 70.0, "top1_k10": 71.0, "top1_k20": 72.0,
                                                 "top5_k20": 95.0})
    # A failed record that (against the contract) still carries a metric: it must never be averaged.
    write_record(tmp_path, "knn", "infonce", 1, {"top1_k20": 99.0}, status="failed", error="NaN loss")
    write_record(tmp_path, "linear", "random", 0, {}, status="failed", error="CUDA out of memory")
    return tmp_path


def cell(cells: pd.DataFrame, row: str, column: str) -> pd.Series:
    return cells[(cells["row"] == row) & (cells["column"] == column)].iloc[0]


def body_rows(markdown: str) -> dict[str, list[str]]:
    """Table body rows of the Markdown, keyed by backbone name."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")][2:]
    rows = [[part.strip() for part in line.strip("|").split(" | ")] for line in lines]
    return {row[0]: row[1:] for row in rows}


def test_records_one_row_per_metric_and_one_per_failed_record(run: Path) -> None:
    records = load_records(run)
    assert len(records) == 2 * 4 + 2 * 2 + 4 + 4 + 1 + 1
    failed = records[records["backbone"] == "random"]
    assert len(failed) == 1 and failed["metric"].isna().all()
    assert failed["error"].iloc[0] == "CUDA out of memory"
    assert {"backbone_sha256", "config_hash", "code_version", "path", "seed"} <= set(records.columns)


def test_mean_and_sample_std_over_two_seeds(run: Path) -> None:
    cells = aggregate_cells(load_records(run), load_layout("demo"))
    top1 = cell(cells, "resa", "k-NN top-1 k=20")
    assert top1["n"] == 2 and top1["mean"] == pytest.approx(81.0)
    assert top1["std"] == pytest.approx(2**0.5)  # ddof=1 of (80, 82)
    assert top1["seeds"] == "0;1"
    assert body_rows(build_table(run, "demo").markdown)["resa"][2] == "81.00 ± 1.41"


def test_failed_record_is_a_dash_with_its_error_and_never_averaged(run: Path) -> None:
    cells = aggregate_cells(load_records(run), load_layout("demo"))
    failed = cell(cells, "random", "linear top-1")
    assert failed["status"] == "failed" and "CUDA out of memory" in failed["reason"]
    mixed = cell(cells, "infonce", "k-NN top-1 k=20")
    assert mixed["n"] == 1 and mixed["mean"] == pytest.approx(72.0)
    assert "NaN loss" in mixed["reason"]
    markdown = build_table(run, "demo").markdown
    assert body_rows(markdown)["random"][4].startswith("– [")
    assert "failed: seed 0: CUDA out of memory" in markdown
    assert body_rows(markdown)["infonce"][2].startswith("72.00 (n=1) [")


def test_missing_backbone_row_is_shown_as_not_run_with_one_footnote(run: Path) -> None:
    markdown = build_table(run, "demo").markdown
    pixels = body_rows(markdown)["pixels"]
    assert all(text.startswith("– [") for text in pixels) and len(set(pixels)) == 1  # one footnote per reason
    number = pixels[0].split("[")[1].rstrip("]")
    assert f"[{number}] not run: no record" in markdown.splitlines()
    cells = aggregate_cells(load_records(run), load_layout("demo"))
    assert cell(cells, "pixels", "k-NN top-1 k=5")["reason"] == "no knn record for pixels on fashion_mnist"


def test_every_row_and_column_is_present(run: Path) -> None:
    layout = load_layout("demo")
    cells = aggregate_cells(load_records(run), layout)
    assert len(cells) == len(layout.rows) * len(layout.columns)
    rows = body_rows(build_table(run, "demo").markdown)
    assert list(rows) == ["resa", "infonce", "random", "pixels"]
    assert all(len(texts) == len(layout.columns) for texts in rows.values())


def test_fewshot_single_run_shows_its_ci(run: Path) -> None:
    assert body_rows(build_table(run, "demo").markdown)["resa"][5] == "60.00 ± 0.80 (n=1)"


def test_caption_states_dataset_seeds_and_code_version(run: Path) -> None:
    caption = build_table(run, "demo").markdown.splitlines()[2]
    assert "Dataset: fashion_mnist" in caption and "seeds: 0, 1 (2)" in caption
    assert "code version: abc1234" in caption and "ddof=1" in caption


def test_outputs_written_with_provenance_and_a_valid_png(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_table(run, "demo", out)
    assert (out / "demo.md").read_text().startswith("## Demo")
    csv = pd.read_csv(out / "demo.csv")
    assert {"code_version", "config_hash", "backbone_sha256", "n", "mean", "std", "status",
            "reason"} <= set(csv.columns)
    assert len(csv) == 4 * 10  # 4 backbones x the demo layout's 10 columns (7 frozen-feature, 3 fine-tuning)
    resa = csv[(csv["row"] == "resa") & (csv["metric"] == "top1_k20")].iloc[0]
    assert resa["code_version"] == "abc1234" and resa["backbone_sha256"].startswith(
        hashlib.sha256(b"resa").hexdigest())
    png = (out / "knn_top1_vs_k.png").read_bytes()
    assert len(png) > 1000 and png.startswith(PNG_MAGIC)


def test_malformed_json_is_an_error_naming_the_file(run: Path) -> None:
    bad = write_record(run, "knn", "pixels", 0, {"top1_k20": 50.0})
    bad.write_text("{not json")
    with pytest.raises(UserError, match=str(bad)):
        load_records(run)


def test_record_that_contradicts_its_path_is_an_error(run: Path) -> None:
    path = write_record(run, "knn", "pixels", 0, {"top1_k20": 50.0})
    moved = path.with_name("seed7.json")
    path.rename(moved)
    with pytest.raises(UserError, match="seed7.json"):
        load_records(run)


@pytest.mark.parametrize(
    ("layout_text", "message"),
    [
        ("title: t\nrows: [resa]\ncolumns: []\ncolour: red\n", "unknown layout key 'colour'"),
        ("title: t\nrows: [resa]\ncolumns:\n  - {label: a, task: knn, dataset: d, metric: top1_k5, k: 5}\n",
         r"columns\[0\]: unknown layout key 'k'"),
        ("title: t\nrows: [resa]\ncolumns:\n  - {label: a, task: knn, dataset: d, metric: top1_k05}\n",
         r"columns\[0\].metric: 'top1_k05' is not a knn metric"),
        ("title: t\ncolumns:\n  - {label: a, task: knn, dataset: d, metric: top1_k5}\n",
         "missing layout key 'rows'"),
    ],
)
def test_layout_is_validated_strictly(tmp_path: Path, layout_text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(layout_text)
    with pytest.raises(UserError, match=message) as info:
        load_layout(str(path))
    assert str(path) in str(info.value)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "results", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=False)


def test_cli_table_prints_markdown_and_exits_0(run: Path) -> None:
    result = run_cli("table", "--run-dir", str(run))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("## Demo") and "| resa | 79.00 ± 1.41 |" in result.stdout
    assert (run / "tables" / "demo.md").read_text() == result.stdout


def test_cli_plot_knn_writes_png(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "plot.png"
    result = run_cli("plot-knn", "--run-dir", str(run), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_cli_with_empty_run_dir_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_cli("table", "--run-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: no result records under {tmp_path / 'records'}"]


def test_format_1_records_are_refused_then_migrated_by_the_named_command(run: Path) -> None:
    new = write_record(run, "lowshot", "resa", 0, {"top1": 50.0}, dataset="imagenet",
                       protocol={"label_subset": "1percent", "epochs": 20})
    record = json.loads(new.read_text())
    old = run / "records" / "lowshot" / "imagenet" / new.parent.name / "seed0.json"  # the format-1 place
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({key: value for key, value in record.items() if not key.startswith("protocol")}
                              | {"format_version": 1}))
    new.unlink()
    refused = run_cli("table", "--run-dir", str(run))
    assert refused.returncode == 2 and refused.stderr.splitlines() == [
        f"error: {old}: a format-1 record (its path has no protocol level); convert the run with "
        f"'python -m results migrate {run}'"]
    migrated = run_cli("migrate", str(run))
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(new.read_text()) == record  # the same record, at its format-2 path
    assert not old.exists() and not old.parent.exists()
    assert run_cli("migrate", str(run)).returncode == 0  # nothing left to do: a no-op
    cells = aggregate_cells(load_records(run), load_layout("resa_table10"))
    assert cell(cells, "resa", "top-1 1%")["mean"] == pytest.approx(50.0)


def test_knn_plot_keeps_two_protocols_apart_with_the_tables_summary(run: Path) -> None:
    write_record(run, "knn", "resa", 0, {"top1_k20": 40.0}, protocol={"label_subset": "1percent"})
    lines = knn_lines(load_records(run))
    resa = lines[(lines["backbone"] == "resa") & (lines["k"] == 20)].set_index("line")
    assert len(resa) == 2 and sorted(resa["mean"]) == [pytest.approx(40.0), pytest.approx(81.0)]
    assert resa["std"].dropna().tolist() == [pytest.approx(2**0.5)]  # ddof=1 over the two seeds of one protocol
    assert all(label.startswith("resa (protocol ") for label in resa.index)
    assert set(lines[lines["backbone"] == "infonce"]["line"]) == {"infonce"}
