"""``python -m converters``: single file, batch over a directory, one-line errors and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from converters import read_backbone
from converters.cli import EXIT_SOME_FAILED, main
from pretrain.models import build_backbone
from resa_core.errors import EXIT_USER_ERROR, run_cli

REPO_ROOT = Path(__file__).resolve().parents[1]


def cli(argv: list[str]) -> int:
    """Run the CLI in-process through run_cli, as ``python -m converters`` does; return the exit code."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [str(arg) for arg in argv])
    return exit_info.value.code


def write_checkpoint(path: Path, arch: str = "resnet18") -> Path:
    torch.save(
        {"format_version": 1, "method": "byol", "arch": arch, "encoder": build_backbone(arch).state_dict(),
         "momentum_encoder": build_backbone(arch).state_dict(), "epoch": 3, "global_step": 9,
         "config": {}, "train_state": {}},
        path,
    )
    return path


def test_single_file_prints_detection_coverage_and_verify(tmp_path, capsys):
    src = write_checkpoint(tmp_path / "ck.pth")
    out = tmp_path / "ck.pkl"
    assert cli([src, "-o", out, "--to", "detectron2", "--verify"]) == 0
    line = capsys.readouterr().out.strip()
    assert "detected resa (resnet18, momentum encoder, method byol, 3 epochs)" in line
    assert "mapped 120/120 tensors of resnet18, dropped: none" in line
    assert "verified: 120 tensors equal, max |feature diff| 0.00e+00" in line
    assert read_backbone(out).method == "byol"


def test_user_error_is_one_line_and_exit_2(tmp_path, capsys):
    src = write_checkpoint(tmp_path / "ck.pth")
    out = tmp_path / "ck.pkl"
    out.write_bytes(b"keep")
    assert cli([src, "-o", out, "--to", "detectron2"]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "already exists" in err
    assert out.read_bytes() == b"keep"
    assert cli([src, "-o", out, "--to", "detectron2", "--force"]) == 0
    assert read_backbone(out).source_format == "detectron2"


def test_batch_over_directory_converts_good_files_and_fails_bad_one(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_checkpoint(inputs / "a.pth")
    torch.save(build_backbone("resnet18").state_dict(), inputs / "b.pth")
    (inputs / "c_broken.pth").write_bytes(b"not a checkpoint")
    out_dir = tmp_path / "out"

    assert cli([inputs, "-o", out_dir, "--to", "mmseg", "--encoder", "momentum"]) == EXIT_SOME_FAILED == 1
    captured = capsys.readouterr()
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.pth"]  # b has no momentum encoder
    assert "FAILED" in captured.err and "c_broken.pth" in captured.err and "b.pth" in captured.err
    assert "converted 1/3 files" in captured.out

    assert cli([inputs, "-o", out_dir, "--to", "mmseg", "--force"]) == EXIT_SOME_FAILED == 1
    captured = capsys.readouterr()
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.pth", "b.pth"]
    assert len(captured.out.strip().splitlines()) == 3  # one line per converted file + the summary
    assert captured.err.count("FAILED") == 1 and "c_broken.pth" in captured.err
    assert "converted 2/3 files" in captured.out


def test_module_entry_point_runs(tmp_path):
    src = write_checkpoint(tmp_path / "ck.pth")
    result = subprocess.run(
        [sys.executable, "-m", "converters", str(src), "-o", str(tmp_path / "ck.pth.out.pth"),
         "--to", "torchvision", "--encoder", "online"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "online encoder" in result.stdout
    assert read_backbone(tmp_path / "ck.pth.out.pth").encoder == "online"


def test_dino_teacher_to_timm_safetensors_names_what_it_detected(tmp_path, capsys):
    import argparse

    vit = build_backbone("vit_small_patch16").state_dict()
    src = tmp_path / "dino_checkpoint.pth"
    torch.save({"teacher": {f"backbone.{k}": v for k, v in vit.items()},
                "student": {f"module.backbone.{k}": v for k, v in vit.items()},
                "epoch": 100, "args": argparse.Namespace(arch="vit_small")}, src)
    out = tmp_path / "dino.safetensors"
    assert cli([src, "-o", out, "--to", "timm", "--encoder", "teacher", "--verify"]) == 0
    line = capsys.readouterr().out.strip()
    assert "detected dino (vit_small_patch16, teacher encoder, method dino, 100 epochs)" in line
    assert "mapped 150/150 tensors of vit_small_patch16" in line
    assert "not this encoder: student (student encoder, 150 tensors)" in line
    assert "timm vit_small_patch16_224: 0 missing / 0 unexpected keys" in line
    assert read_backbone(out).source_format == "timm"


def test_vit_to_detectron2_is_refused_with_one_line(tmp_path, capsys):
    src = tmp_path / "vit.pth"
    torch.save(build_backbone("vit_small_patch16").state_dict(), src)
    assert cli([src, "-o", tmp_path / "vit.pkl", "--to", "detectron2"]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "writes resnet backbones only; convert it to timm or mmseg" in err
    assert not (tmp_path / "vit.pkl").exists()
