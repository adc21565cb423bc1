"""``python -m downstream`` end to end on small real Fashion-MNIST subsets."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from downstream.cli import main
from downstream.record import protocol_of
from pretrain.models import build_backbone
from resa_core.atomic import sha256_file, sha256_json
from resa_core.errors import run_cli

REPO = Path(__file__).resolve().parents[1]
SMALL = ["train_size=200", "test_size=100"]
TASK_OVERRIDES = {"knn": [], "linear": ["epochs=5"], "fewshot": ["queries=5", "episodes=20"]}
EXPECTED_METRICS = {
    "knn": {"top1_k5", "top5_k5", "top1_k10", "top5_k10", "top1_k20", "top5_k20"},
    "linear": {"top1", "top5"},
    "fewshot": {"acc_5way1shot", "ci95_5way1shot", "acc_5way5shot", "ci95_5way5shot"},
}
RECORD_KEYS = {
    "format_version", "task", "dataset", "seed", "metrics", "backbone", "protocol", "protocol_sha256", "config",
    "config_hash",
    "code_version", "host", "start_time", "end_time", "status", "error",
}


def cli_args(task: str, weights: str, run_dir: Path, *extra: str) -> list[str]:
    return [task, "--dataset", "fashion_mnist", "--weights", weights, "--run-dir", str(run_dir), *extra]


def run_downstream(argv: list[str]) -> int:
    """Run the CLI in-process exactly as ``python -m downstream`` does; return its exit status."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    return exit_info.value.code


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("task", ["knn", "linear", "fewshot"])
@pytest.mark.parametrize(
    ("weights", "sha256", "arch"),
    [
        ("pixels", sha256_text("pixels"), None),
        ("random:resnet18", sha256_text("random:resnet18:seed3"), "resnet18"),
    ],
    ids=["pixels", "random-resnet18"],
)
def test_cli_writes_valid_record_at_contract_path(tmp_path, capsys, task, weights, sha256, arch):
    argv = cli_args(task, weights, tmp_path, "--seed", "3", *SMALL, *TASK_OVERRIDES[task])
    assert run_downstream(argv) == 0
    (path,) = (tmp_path / "records" / task / "fashion_mnist").glob(f"*/{sha256[:8]}/seed3.json")
    assert capsys.readouterr().out.strip().endswith(str(path))
    record = json.loads(path.read_text())
    assert record["protocol"] == protocol_of(task, record["config"])  # contracts.md §3: the protocol level
    assert path.parent.parent.name == record["protocol_sha256"][:8] == sha256_json(record["protocol"])[:8]
    assert set(record) == RECORD_KEYS
    assert (record["task"], record["dataset"], record["seed"]) == (task, "fashion_mnist", 3)
    assert record["status"] == "ok"
    assert record["error"] is None
    assert set(record["metrics"]) == EXPECTED_METRICS[task]
    assert all(0.0 <= value <= 100.0 for value in record["metrics"].values())
    assert record["backbone"] == {
        "name": weights.split(":")[0], "path": weights, "sha256": sha256, "method": None, "arch": arch,
        "pretrain_epochs": None,
    }
    assert record["config"]["train_size"] == 200 and len(record["config_hash"]) == 64
    assert record["start_time"] <= record["end_time"]


def test_cli_name_flag_sets_row_label(tmp_path, capsys):
    assert run_downstream(cli_args("knn", "pixels", tmp_path, "--name", "raw", *SMALL)) == 0
    (path,) = (tmp_path / "records").rglob("seed0.json")
    assert json.loads(path.read_text())["backbone"]["name"] == "raw"


def test_cli_reads_a_pretrain_checkpoint_through_converters(tmp_path, capsys):
    """A contracts.md §1 checkpoint: the momentum encoder is evaluated, provenance comes from the file."""
    online, momentum = build_backbone("resnet18"), build_backbone("resnet18")
    checkpoint = tmp_path / "resa.pt"
    torch.save({
        "format_version": 1, "method": "resa", "arch": "resnet18", "encoder": online.state_dict(),
        "momentum_encoder": momentum.state_dict(), "config": {}, "epoch": 6, "global_step": 60,
        "train_state": {},
    }, checkpoint)
    assert run_downstream(cli_args("knn", str(checkpoint), tmp_path / "run", *SMALL)) == 0
    sha256 = sha256_file(checkpoint)
    (path,) = (tmp_path / "run/records/knn/fashion_mnist").glob(f"*/{sha256[:8]}/seed0.json")
    record = json.loads(path.read_text())
    assert record["backbone"] == {
        "name": "resa", "path": str(checkpoint), "sha256": sha256, "method": "resa", "arch": "resnet18",
        "pretrain_epochs": 6,
    }


def test_missing_weights_file_is_one_line_exit_2(tmp_path, capsys):
    assert run_downstream(cli_args("knn", str(tmp_path / "nope.pt"), tmp_path)) == 2
    assert capsys.readouterr().err.count("error: ") == 1
    assert not (tmp_path / "records").exists()


def test_failing_run_writes_failed_record_and_one_error_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "downstream", *cli_args("knn", "pixels", tmp_path, "data_root=/nonexistent")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "/nonexistent" in lines[0]
    records = list((tmp_path / "records").rglob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert (record["status"], record["metrics"]) == ("failed", {})
    assert "/nonexistent" in record["error"]
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_unknown_config_key_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    assert run_downstream(cli_args("linear", "pixels", tmp_path, "epoch=5")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "'epoch'" in err[0]
    assert not (tmp_path / "records").exists()


def test_unknown_key_in_config_file(tmp_path, capsys):
    config = tmp_path / "knn.yaml"
    config.write_text("ks: [1]\ntemprature: 0.1\n")
    assert run_downstream(cli_args("knn", "pixels", tmp_path, "--config", str(config))) == 2
    assert "temprature" in capsys.readouterr().err


def test_rerun_and_k_sweep_hit_the_feature_cache(tmp_path, capsys):
    argv = cli_args("knn", "random:resnet18", tmp_path)
    assert run_downstream(argv + SMALL) == 0
    caches = sorted((tmp_path / "features").glob("*.pt"))
    assert len(caches) == 2  # train and test roles
    stamps = [path.stat().st_mtime_ns for path in caches]
    capsys.readouterr()
    assert run_downstream(argv + SMALL + ["ks=[1,50]"]) == 0
    assert "features" not in capsys.readouterr().err  # no extraction progress bar
    assert sorted((tmp_path / "features").glob("*.pt")) == caches
    assert [path.stat().st_mtime_ns for path in caches] == stamps


def test_every_task_module_is_registered_under_its_own_name():
    from downstream.tasks import TASKS

    modules = {path.stem for path in (REPO / "downstream" / "tasks").glob("*.py") if path.stem != "__init__"}
    assert {TASKS[name].name for name in TASKS} == set(TASKS)
    assert len(TASKS) == len(modules) == 6


def test_the_cli_imports_a_tasks_dependencies_only_when_that_task_runs():
    """A knn job does not import scikit-learn (2-3 s of start-up); the clustering task does."""
    probe = ("import sys; from downstream.cli import parse_args; from downstream.tasks import task_spec; "
             "parse_args(['knn', '--dataset', 'fashion_mnist', '--weights', 'pixels', '--run-dir', 'r']); "
             "task_spec('knn'); before = 'sklearn' in sys.modules; task_spec('clustering'); "
             "print(before, 'sklearn' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
