"""``python -m downstream segmentation --task NAME --weights FILE [--num-gpus N] [--seed S] [key=value ...]``.

Fine-tunes and evaluates one converted backbone in MMSegmentation's mmengine Runner and writes one
result record (docs/contracts.md §3) with ``mIoU``, ``mAcc`` and ``aAcc`` (percent) at
``<run-dir>/records/<task>/<dataset>/<backbone-sha8>/seed<S>.json``. The work dir (mmengine
logs and checkpoints) is ``<run-dir>/work_dirs/<task>/<backbone-sha8>/seed<S>-<config-sha8>``:
running the same command again resumes from its last checkpoint, another config starts fresh.
Bad input (task, weights, arch, override, data layout, backbone keys) stops with one UserError
line before training; a failure after that writes a ``failed`` record and exits non-zero. The
reference total batch is kept on any GPU count unless ``--linear-scaling``. See docs/segmentation.md.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Sequence
from pathlib import Path

from downstream.record import utc_now
from downstream.segmentation.launch import LAUNCHERS, detect_launcher, torchrun_command
from downstream.segmentation.tasks import TASKS, seg_task
from resa_core.errors import UserError
from resa_core.mmseg_import import import_mmseg


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m downstream segmentation",
        description="Fine-tune a converted backbone in MMSegmentation and write one result record.",
    )
    parser.add_argument("--task", required=True, choices=sorted(TASKS), help="task (configs/segmentation/<task>.py)")
    parser.add_argument("--weights", required=True, help="backbone file any converters reader accepts")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/segmentation"), help="records and work dirs")
    parser.add_argument("--data-root", type=Path, default=Path("data"), help="folder holding the mmseg datasets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-gpus", type=int, help="GPUs in total (default: the launcher's world size; "
                        "N > 1 from a plain shell starts torchrun on this node)")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="auto", help="mmengine launcher (auto: from env)")
    parser.add_argument("--name", help="row label in tables (default: the backbone's method or file stem)")
    parser.add_argument("--linear-scaling", action="store_true",
                        help="keep the per-GPU batch and scale lr/iterations to the GPU count (a protocol deviation, "
                        "noted in the record); default: the reference total batch on any GPU count")
    parser.add_argument("--eval-at-init", action="store_true",
                        help="also evaluate before the first iteration (init_mIoU/init_mAcc/init_aAcc)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="mmseg config overrides")
    return parser.parse_intermixed_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(argv or [])
    args = parse_args(argv)
    launcher, world_size = detect_launcher(args.launcher)
    if args.num_gpus is not None and args.num_gpus < 1:
        raise UserError(f"--num-gpus must be >= 1, got {args.num_gpus}")
    if launcher == "none" and (args.num_gpus or 1) > 1:
        return subprocess.call(torchrun_command(args.num_gpus, _without_num_gpus(argv)))
    if args.num_gpus is not None and args.num_gpus != world_size:
        raise UserError(f"--num-gpus {args.num_gpus} but the {launcher} launcher started {world_size} processes")
    import_mmseg()
    from downstream.segmentation.run import SegRun

    run = SegRun.prepare(args, seg_task(args.task), launcher, world_size)
    start_time = utc_now()
    try:
        metrics = run.train_and_evaluate()
    except BaseException as err:
        run.write_record(start_time, error=_one_line(err))
        raise
    path = run.write_record(start_time, metrics=metrics)
    if path is not None:
        print(" ".join(f"{name}={value:.2f}" for name, value in metrics.items()))
        print(path)
    return 0


def _without_num_gpus(argv: list[str]) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--num-gpus":
            skip = True
        elif not item.startswith("--num-gpus="):
            out.append(item)
    return out


def _one_line(err: BaseException) -> str:
    text = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
    return " ".join(text.split()) or type(err).__name__
