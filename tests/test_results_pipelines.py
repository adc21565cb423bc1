"""Every table layout is filled by a shipped pipeline, each measured number on the row of the method it measured.

For each pipeline under ``configs/pipelines/`` that renders tables, the jobs of its dry-run plan
(``python -m slurm run PIPELINE --dry-run``, checked line by line against the printed plan) are
turned into the records they would write: the real record path and config
(the downstream CLI's own argument parsing and config resolution, :func:`downstream.record.build_record`),
the backbone's pretraining length from the pretrain job that made it, and synthetic metric
values, one per (job, metric), under the metric names each task writes. Then the pipeline's own
``results table`` jobs run, and for every layout the test checks that each cell some job
measured is filled with exactly that job's number, that every column of the layout is measured
by some job, that our row sits beside the paper's row where the paper has one, that a second
run writes byte-identical files, and (where a LaTeX engine is installed) that each ``.tex`` compiles.
A layout that several pipelines render (the DSA and MIRA tables: ReSA's row and the method's own
rows) has its cells checked in each of those runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from conftest import in_repo_root

from downstream.cli import parse_args
from downstream.config import resolve_config
from downstream.datasets import dataset_spec
from downstream.record import build_record, protocol_of, record_path
from downstream.tasks import task_spec
from resa_core.atomic import write_json_atomic
from results.cli import main as results_main
from results.layout import SHIPPED_LAYOUTS_DIR, load_layout
from slurm.cli import main as slurm_main
from slurm.pipeline import load_pipeline

REPO_ROOT = Path(__file__).resolve().parents[1]
PIPELINES = sorted((REPO_ROOT / "configs" / "pipelines").glob("*.yaml"))
LAYOUTS = sorted(path.stem for path in SHIPPED_LAYOUTS_DIR.glob("*.yaml"))
FINE_TUNING = ("detection", "segmentation")  # the engine commands that write a record (downstream/cli.py)
PAPER_LAYOUTS = [f"resa_table{n}" for n in (1, 2, 3, 5, 6, 7, 10)] + [f"mira_table{n}" for n in (3, 4, 5, 7)] + [
    f"dsa_table{n}" for n in (4, 6, 7)]  # the fourteen paper tables with published numbers
pytestmark = pytest.mark.slow  # ~1 min of setup (all pipelines' plans) and a pdflatex run per layout


@dataclass(frozen=True)
class Written:
    """One synthetic record: who (row name) measured what (task, dataset, protocol, epochs) with which values."""

    name: str
    seed: int
    task: str
    dataset: str
    protocol: dict
    pretrain_epochs: int | None
    metrics: dict


def synthetic_value(job: str, metric: str) -> float:
    """A number in [10, 90) that only this job's metric gets, so a misplaced cell shows."""
    return 10.0 + int(hashlib.sha256(f"{job}/{metric}".encode()).hexdigest()[:8], 16) % 8000 / 100


def written_metrics(task: str, dataset: str, config: dict) -> list[str]:
    """The metric names each task writes (docs/contracts.md §3), read off the task modules."""
    if task == "knn":  # downstream/tasks/knn.py knn_metrics
        names = []
        if config["protocol"] in ("weighted", "both"):
            names += [f"top{top}_k{k}" for k in config["ks"] for top in (1, 5)]
        if config["protocol"] in ("majority", "both"):
            names += [f"top1_majority_k{k}" for k in config["majority_ks"]]
        if config["buckets"] == "long_tail":  # knn.py bucket_metrics: each top-1 per class-frequency bucket
            names += [f"{name}_{bucket}" for name in names if name.startswith("top1")
                      for bucket in ("many", "medium", "few")]
        return names
    if task in ("linear", "lowshot"):  # downstream/tasks/linear.py topk_accuracy
        return ["top1", "top5"]
    if task == "fewshot":  # downstream/tasks/fewshot.py run
        return [f"{kind}_{config['ways']}way{shots}shot" for shots in config["shots"] for kind in ("acc", "ci95")]
    if task == "logreg-transfer":  # downstream/tasks/logreg_transfer.py run
        from downstream.tasks.logreg_transfer import MEAN_PER_CLASS_DATASETS, MULTILABEL_DATASETS

        metric = config["metric"]
        if metric == "auto":
            metric = ("map11" if dataset in MULTILABEL_DATASETS
                      else "mean_per_class" if dataset in MEAN_PER_CLASS_DATASETS else "top1")
        return [metric, f"val_{metric}", "selected_C"]
    if task == "detection":  # downstream/detection/trainer.py: bbox_ (and segm_ with masks) COCO summary
        kinds = ("bbox", "segm") if "mask_rcnn" in config["task"] else ("bbox",)
        return [f"{kind}_AP{suffix}" for kind in kinds for suffix in ("", "50", "75", "s", "m", "l")]
    if task == "segmentation":
        from downstream.segmentation.run import METRICS

        return list(METRICS)
    raise AssertionError(f"no metric list for task {task}")


def _option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _converted_backbones(pipeline) -> dict[str, tuple[str, int | None]]:
    """Converted backbone file -> (the checkpoint it converts, the epochs of the pretrain job that wrote it)."""
    from pretrain.checkpoint import checkpoint_path
    from pretrain.config import resolve

    epochs = {}
    for job in pipeline.jobs:
        if job.command == "pretrain":
            config = resolve(job.argv[0], job.argv[1:])
            epochs[str(checkpoint_path(config["output_dir"]))] = config["epochs"]
    return {_option(job.argv, "-o"): (job.argv[0], epochs.get(job.argv[0]))
            for job in pipeline.jobs if job.command == "converters"}


def write_pipeline_records(pipeline) -> list[Written]:
    """The record every downstream job of ``pipeline`` would write, with synthetic metrics."""
    converted = _converted_backbones(pipeline)
    written = []
    for job in pipeline.jobs:
        if job.command != "downstream":
            continue
        argv = job.argv
        if argv[0] not in FINE_TUNING and "--dataset" not in argv:
            continue  # a utility command (make-scenes, random-backbone): it writes no record
        weights, name, seed = _option(argv, "--weights"), _option(argv, "--name"), int(_option(argv, "--seed"))
        run_dir = Path(_option(argv, "--run-dir"))
        if argv[0] == "detection":
            from downstream.detection.tasks import get_task

            task_name, dataset = _option(argv, "--task"), get_task(_option(argv, "--task")).dataset
            config = {"task": task_name}
        elif argv[0] == "segmentation":
            from downstream.segmentation.tasks import seg_task

            task_name, dataset = _option(argv, "--task"), seg_task(_option(argv, "--task")).dataset
            config = {"task": task_name}
        else:
            args = parse_args(argv)
            task, spec = task_spec(args.task), dataset_spec(args.dataset)
            config = resolve_config(task.schema, args.config, args.overrides, spec.defaults)
            task_name, dataset = task.name, spec.name
        source, epochs = converted.get(weights, (f"{weights}:seed{seed}", None))  # random:<arch>, pixels: per seed
        sha256 = hashlib.sha256(source.encode()).hexdigest()  # converted files keep their source's sha256
        backbone = {"name": name, "path": weights, "sha256": sha256, "method": "synthetic", "arch": "synthetic",
                    "pretrain_epochs": epochs}
        metrics = {metric: synthetic_value(job.name, metric)
                   for metric in written_metrics(argv[0] if argv[0] in FINE_TUNING else task_name, dataset, config)}
        record = build_record(task_name, dataset, seed, backbone, config, "2026-01-01T00:00:00+00:00", metrics=metrics)
        record.update(code_version="synthetic", host="synthetic", end_time="2026-01-01T00:00:00+00:00")
        path = record_path(run_dir, task_name, dataset, sha256, seed, protocol_of(task_name, config))
        assert not path.exists(), f"{job.name} would overwrite another job's record {path}"
        write_json_atomic(path, record)
        written.append(Written(name, seed, task_name, dataset, record["protocol"], epochs, metrics))
    return written


def table_jobs(pipeline) -> dict[str, list[str]]:
    """Layout name -> the argv of the pipeline's ``results table`` job that renders it."""
    return {_option(job.argv, "--layout"): job.argv for job in pipeline.jobs
            if job.command == "results" and job.argv[0] == "table"}


@dataclass
class RenderedRun:
    pipeline: str
    written: list[Written]
    outputs: dict[str, Path]  # layout -> the directory its files were written to


def _check_dry_run_plan(path: Path, run_dir: Path, pipeline) -> None:
    """The jobs used here are the ones ``python -m slurm run PIPELINE --dry-run`` prints, line for line.

    Its ``main`` runs in this process (one interpreter start instead of one per pipeline)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert slurm_main(["run", str(path), "--dry-run", f"run_dir={run_dir}"]) == 0
    commands = [line.strip() for line in printed.getvalue().splitlines() if line.strip().startswith("python -m ")]
    assert commands == [f"python -m {job.command} {' '.join(job.argv)}" for job in pipeline.jobs]
    assert not run_dir.exists()  # a dry run writes nothing


@pytest.fixture(scope="module")
def renderings(tmp_path_factory) -> dict[str, list[RenderedRun]]:
    """Layout name -> every pipeline run that rendered it (records written, table jobs run once), in file order."""
    by_layout: dict[str, list[RenderedRun]] = {}
    for path in PIPELINES:
        run_dir = tmp_path_factory.mktemp(path.stem) / "run"
        pipeline = load_pipeline(path, [f"run_dir={run_dir}"])
        jobs = table_jobs(pipeline)
        if not jobs:
            continue
        with in_repo_root():  # the stage arguments name repo-relative configs, as `python -m slurm` reads them
            _check_dry_run_plan(path, run_dir, pipeline)
            run = RenderedRun(path.name, write_pipeline_records(pipeline), {})
        for layout, argv in jobs.items():
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                assert results_main(argv) == 0
            run.outputs[layout] = Path(_option(argv, "--run-dir")) / "tables"
            by_layout.setdefault(layout, []).append(run)
    return by_layout


@pytest.fixture(scope="module")
def rendered(renderings) -> dict[str, RenderedRun]:
    """Layout name -> the first pipeline run that rendered it."""
    return {layout: runs[0] for layout, runs in renderings.items()}


def test_every_shipped_layout_is_rendered_by_a_shipped_pipeline(rendered) -> None:
    assert set(PAPER_LAYOUTS) | {"demo"} <= set(LAYOUTS)
    missing = sorted(set(LAYOUTS) - set(rendered))
    assert not missing, f"layouts no pipeline renders: {missing}"


def expected_cells(layout, written: list[Written]) -> dict[tuple[str, str], float]:
    """(row, column) -> the mean over seeds of the records that measured that cell (one record per seed)."""
    values: dict[tuple[str, str], dict[int, float]] = {}
    for column in layout.columns:
        for record in written:
            if (record.name in layout.rows and record.task == column.task and record.dataset == column.dataset
                    and all(record.protocol.get(key, ...) == value for key, value in column.protocol)
                    and column.pretrain_epochs in (None, record.pretrain_epochs)
                    and column.metric in record.metrics):
                seeds = values.setdefault((record.name, column.label), {})
                assert record.seed not in seeds, f"{layout.name}: two records of one seed fill {record.name} / " \
                                                 f"{column.label}"
                seeds[record.seed] = record.metrics[column.metric]
    return {key: sum(seeds.values()) / len(seeds) for key, seeds in values.items()}


@pytest.mark.parametrize("name", LAYOUTS)
def test_layout_cells_hold_the_number_of_the_job_that_measured_them(renderings, name) -> None:
    layout = load_layout(name)
    for run in renderings[name]:  # a layout several pipelines render (e.g. ReSA's and MIRA's rows): each one
        _check_cells(layout, name, run)


def _check_cells(layout, name: str, run: RenderedRun) -> None:
    expected = expected_cells(layout, run.written)
    unmeasured = [column.label for column in layout.columns
                  if not any(label == column.label for _, label in expected)]
    assert not unmeasured, f"{name}: no job of {run.pipeline} measures column(s) {unmeasured}"
    cells = pd.read_csv(run.outputs[name] / f"{name}.csv", keep_default_na=False, na_values=[""])
    for cell in cells.itertuples(index=False):
        if (cell.row, cell.column) in expected:
            assert cell.status == "ok", f"{name}: {cell.row} / {cell.column}: {cell.status} ({cell.reason})"
            assert cell.mean == pytest.approx(expected[(cell.row, cell.column)]), (name, cell.row, cell.column)
        else:
            assert cell.status != "ok", f"{name}: {cell.row} / {cell.column} filled though no job measured it"
    markdown = (run.outputs[name] / f"{name}.md").read_text()
    if layout.published is not None:
        _check_beside_the_paper(layout, cells, expected, markdown)


def _check_beside_the_paper(layout, cells: pd.DataFrame, expected: dict, markdown: str) -> None:
    """A measured row mapped to a paper row is labelled and compared as that row; the paper's number sits beside."""
    for row, label in layout.row_labels:
        if any(key[0] == row for key in expected):
            assert f"| {label} [{row}] |" in markdown, f"{layout.name}: row {row} not on the paper's row {label}"
    for (row, label), value in expected.items():
        column = next(column for column in layout.columns if column.label == label)
        paper = layout.published.value(layout.published_row(row), column.published)
        cell = cells[(cells["row"] == row) & (cells["column"] == label)].iloc[0]
        if paper is None:
            assert pd.isna(cell.published)
            continue
        assert cell.published == pytest.approx(paper)
        assert cell.delta == pytest.approx(round(round(value, column.decimals) - paper, column.decimals))


def test_resa_table2_fills_its_batch_size_by_epochs_grid(rendered) -> None:
    cells = pd.read_csv(rendered["resa_table2"].outputs["resa_table2"] / "resa_table2.csv")
    filled = {(row, column) for row, column, status in zip(cells["row"], cells["column"], cells["status"],
                                                            strict=True) if status == "ok"}
    assert filled == {("resa_bs256", "100 ep"), ("resa_bs256", "200 ep"), ("resa_bs1024", "100 ep"),
                      ("resa_bs1024", "200 ep"), ("resa_bs1024", "800 ep")}
    assert cells[cells["status"] == "ok"]["mean"].nunique() == 5  # five backbones, five numbers


@pytest.mark.parametrize("name", LAYOUTS)
def test_rerunning_the_table_writes_byte_identical_files(rendered, name) -> None:
    out = rendered[name].outputs[name]
    files = sorted(path for path in out.iterdir() if path.stem == name or path.suffix == ".png")
    before = {path.name: path.read_bytes() for path in files}
    run_dir = out.parent
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        results_main(["table", "--run-dir", str(run_dir), "--layout", name])
    assert {path.name: path.read_bytes() for path in files} == before


def latex_engine() -> str | None:
    return shutil.which("pdflatex")


def preamble_packages(tex: str) -> list[str]:
    """The packages the file's first line says it needs: ``% ... needs \\usepackage{a,b}``."""
    match = re.search(r"\\usepackage\{([^}]*)\}", tex.splitlines()[0])
    assert match, "the .tex file's first line must name the packages it needs"
    return match.group(1).split(",")


@pytest.mark.parametrize("name", LAYOUTS)
def test_latex_table_compiles(rendered, name, tmp_path) -> None:
    engine = latex_engine()
    if engine is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is not installed (scripts/install_latex.sh); CI must compile the tables")
        pytest.skip("no LaTeX engine (pdflatex) installed: run scripts/install_latex.sh")
    tex = (rendered[name].outputs[name] / f"{name}.tex").read_text()
    packages = ",".join(preamble_packages(tex))
    (tmp_path / "table.tex").write_text(tex)
    (tmp_path / "doc.tex").write_text(
        f"\\documentclass{{article}}\n\\usepackage[T1]{{fontenc}}\n\\usepackage[utf8]{{inputenc}}\n"
        f"\\usepackage{{{packages}}}\n\\begin{{document}}\n\\input{{table.tex}}\n\\end{{document}}\n")
    result = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
