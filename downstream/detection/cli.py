"""``python -m downstream detection --task NAME --weights FILE|scratch --run-dir RUN [options] [KEY=VALUE ...]``.

Fine-tunes and evaluates one backbone on one detection task in Detectron2 and writes one result
record (docs/contracts.md §3) at ``<run>/records/<task>/<dataset>/<backbone-sha8>/seed<S>.json``.
Detectron2's own output (``log.txt``, ``config.yaml``, ``metrics.json``, checkpoints,
``inference/``) goes to ``<run>/detectron2/<task>/<backbone-sha8>/seed<S>/``; ``--resume``
continues from its last checkpoint (what a SLURM requeue runs). ``KEY=VALUE`` are Detectron2
config overrides (``SOLVER.MAX_ITER=100``), strictly checked.

Processes: ``--num-gpus`` per machine and ``--num-machines`` / ``--machine-rank`` / ``--dist-url``
as Detectron2's ``launch``; under SLURM with several nodes the machine rank and count default to
``SLURM_NODEID`` / ``SLURM_NNODES``. Bad input stops before training with one ``error:`` line
(exit 2); a failure once the backbone is known writes a ``failed`` record and exits non-zero.
Metrics are read and the record written by the main process only; the other processes return
normally once training and the (distributed) evaluation are done, so every process exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from downstream.detection.tasks import TASKS, get_task
from downstream.record import build_record, record_path, utc_now
from resa_core.atomic import write_json_atomic
from resa_core.errors import UserError

log = logging.getLogger("downstream.detection")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m downstream detection", description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=sorted(TASKS), help="detection task (configs/detection/)")
    parser.add_argument("--weights", required=True,
                        help="backbone file read by converters.read_backbone (ours, Detectron2 .pkl, torchvision "
                        ".pth), or 'scratch'")
    parser.add_argument("--run-dir", required=True, type=Path, help="run directory (records, detectron2 output)")
    parser.add_argument("--seed", type=int, default=0, help="seed (Detectron2 cfg.SEED)")
    parser.add_argument("--name", help="row label in tables (default: the file's method, or 'scratch')")
    parser.add_argument("--resume", action="store_true", help="continue from Detectron2's last checkpoint")
    parser.add_argument("--data-root", type=Path,
                        help="folder holding the Detectron2 datasets: sets $DETECTRON2_DATASETS for this run "
                             "(default: its value, else ./datasets)")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes (GPUs) per machine; 1 on CPU")
    parser.add_argument("--num-machines", type=int, default=int(os.environ.get("SLURM_NNODES", 1)))
    parser.add_argument("--machine-rank", type=int, default=int(os.environ.get("SLURM_NODEID", 0)))
    parser.add_argument("--dist-url", default="auto", help="rendezvous URL (tcp://HOST:PORT for several machines)")
    parser.add_argument("--linear-scaling", action="store_true",
                        help="keep the reference per-GPU batch and scale batch/LR/schedule to the process count "
                        "(a protocol deviation, stated in the record); default: the reference total batch")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Detectron2 config overrides")
    return parser.parse_intermixed_args(argv)


def _one_line(err: BaseException) -> str:
    text = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
    return " ".join(text.split()) or type(err).__name__


def _worker(args: argparse.Namespace, backbone, provenance: dict, output_dir: Path, record_file: Path) -> None:
    """One process of the run (Detectron2's ``launch`` calls it once per GPU)."""
    from detectron2.engine import default_setup
    from detectron2.utils import comm
    from detectron2.utils.logger import setup_logger

    from downstream.detection.config import build_cfg
    from downstream.detection.datasets import check_datasets
    from downstream.detection.trainer import train

    task, start_time = get_task(args.task), utc_now()
    setup_logger(str(output_dir), distributed_rank=comm.get_rank(), name="downstream.detection", abbrev_name="resa")
    cfg = build_cfg(task, args.overrides, comm.get_world_size(), args.seed, str(output_dir), args.linear_scaling)

    def record(**outcome) -> dict:
        return build_record(task.name, task.dataset, args.seed, provenance, _plain(cfg), start_time, **outcome)

    try:
        check_datasets(list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST))
        default_setup(cfg, argparse.Namespace(config_file=str(task.config_file), eval_only=False, **vars(args)))
        metrics = train(cfg, backbone, args.resume)
    except BaseException as err:
        if comm.is_main_process():
            write_json_atomic(record_file, record(error=_one_line(err)))
        raise
    if metrics is None:  # not the main process: the evaluator's numbers, and the record, are rank 0's
        return
    write_json_atomic(record_file, record(metrics=metrics))
    print(" ".join(f"{name}={value:.2f}" for name, value in metrics.items()))
    print(record_file)


def _plain(cfg) -> dict:
    """The CfgNode as plain JSON for the record, less SEED and OUTPUT_DIR (the record has the seed and the
    run's place), so the seeds of one setting share one config hash."""
    import json

    return {key: value for key, value in json.loads(json.dumps(cfg)).items() if key not in ("SEED", "OUTPUT_DIR")}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    task = get_task(args.task)
    if args.num_gpus < 1 or args.num_machines < 1:
        raise UserError("--num-gpus and --num-machines must be >= 1")
    if args.data_root is not None:  # before Detectron2's import registers its builtin sets under the root
        os.environ["DETECTRON2_DATASETS"] = str(args.data_root)
    from detectron2.engine import launch

    from downstream.detection.weights import provenance, read_weights

    backbone = read_weights(args.weights)
    block = provenance(args.weights, backbone, args.name)
    output_dir = args.run_dir / "detectron2" / task.name / block["sha256"][:8] / f"seed{args.seed}"
    record_file = record_path(args.run_dir, task.name, task.dataset, block["sha256"], args.seed)
    launch(_worker, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args, backbone, block, output_dir, record_file))
    return 0
