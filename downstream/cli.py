"""``python -m downstream TASK --dataset D --weights W --run-dir RUN [--seed S] [--config F] [k=v ...]``.

Runs one task on one backbone and writes one result record (docs/contracts.md §3) at
``<run>/records/<task>/<dataset>/<protocol-sha8>/<backbone-sha8>/seed<S>.json``. Bad input (unknown task,
dataset, arch or config key, missing weights) stops before anything is written. Once the
backbone is known, any failure of the task writes a record with status ``failed`` and the
error, then exits non-zero (2 for a :class:`UserError`, 1 with a traceback for a bug).
Features are cached under ``<run>/features/``; a log goes to ``<run>/logs/``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from downstream import distributed
from downstream.backbones import PIXELS, RANDOM_PREFIX, resolve_backbone
from downstream.config import resolve_config
from downstream.datasets import DATASETS, dataset_spec
from downstream.features import cached_features
from downstream.record import build_record, protocol_of, record_path, utc_now
from downstream.tasks import TASKS, TaskContext, task_spec
from resa_core.atomic import write_json_atomic
from resa_core.errors import UserError

log = logging.getLogger("downstream")

# Fine-tuning transfer runs inside its own engine with its own command line:
# ``python -m downstream detection ...`` (Detectron2), ``... segmentation ...`` (MMSegmentation).
# ``make-scenes`` writes the Fashion-MNIST scenes set those two fine-tune on (the demo), and
# ``random-backbone`` the random:<arch> encoder as a file for them.
ENGINE_TASKS = {"detection": "downstream.detection.cli", "segmentation": "downstream.segmentation.cli",
                "make-scenes": "downstream.scenes.cli", "random-backbone": "downstream.random_backbone"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m downstream",
        description="Run one evaluation task on one frozen backbone and write one result record.",
    )
    parser.add_argument("task", choices=sorted(TASKS), help="evaluation task")
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS), help="evaluation dataset")
    parser.add_argument(
        "--weights", required=True,
        help=f"checkpoint/backbone file (read by converters.read_backbone), '{RANDOM_PREFIX}<arch>' "
        f"or '{PIXELS}'",
    )
    parser.add_argument("--run-dir", required=True, type=Path, help="run directory (records, features, logs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the task (and of random:<arch> init)")
    parser.add_argument("--config", type=Path, help="YAML task config (strict keys, _base_ allowed)")
    parser.add_argument("--name", help="row label in tables (default: the method, 'random' or 'pixels')")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser.parse_intermixed_args(argv)


def _log_to_file(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _one_line(err: BaseException) -> str:
    text = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
    return " ".join(text.split()) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ENGINE_TASKS:
        return importlib.import_module(ENGINE_TASKS[argv[0]]).main(argv[1:])
    args = parse_args(argv)
    task, dataset = task_spec(args.task), dataset_spec(args.dataset)
    config = resolve_config(task.schema, args.config, args.overrides, task.dataset_defaults(dataset))
    missing = [role for role in task.roles if role not in dataset.roles]
    if missing and not task.on_images(config):
        raise UserError(f"task '{task.name}' needs the {missing} role(s); dataset '{dataset.name}' has {dataset.roles}")
    if dataset.multilabel and not task.multilabel:
        raise UserError(f"dataset '{dataset.name}' is multi-label; task '{task.name}' takes single-label datasets only")
    start_time = utc_now()
    backbone = resolve_backbone(args.weights, args.seed, dataset.grey, args.name)
    backbone.encoder.to("cuda" if torch.cuda.is_available() else "cpu")
    path = record_path(args.run_dir, task.name, dataset.name, backbone.sha256, args.seed,
                       protocol_of(task.name, config))
    log_path = args.run_dir / "logs" / path.relative_to(args.run_dir / "records").with_suffix(".log")
    handler = _log_to_file(log_path)
    log.info("%s on %s, backbone %s (%s), seed %d, config %s", task.name, dataset.name, backbone.name,
             backbone.path, args.seed, config)

    def record(**outcome) -> dict:
        return build_record(
            task.name, dataset.name, args.seed, backbone.provenance(), config, start_time, **outcome
        )

    try:
        context = TaskContext(backbone.encoder, backbone.arch, dataset, args.run_dir, args.weights, backbone.sha256)
        if task.on_images(config):
            metrics = task.run(context, config, args.seed)
        else:
            roles = task.roles + tuple(role for role in task.optional_roles if role in dataset.roles)
            features = {
                role: cached_features(
                    args.run_dir, backbone.sha256, backbone.encoder, dataset.name, role, config,
                    lambda role=role: dataset.load(role, config),
                )
                for role in roles
            }
            extra = {"context": context} if task.uses_context else {}
            metrics = task.run(features, config, args.seed, **extra)
    except BaseException as err:
        if distributed.is_main():  # under torchrun, one record per run
            write_json_atomic(path, record(error=_one_line(err)))
        log.exception("failed; record %s", path)
        raise
    finally:
        log.removeHandler(handler)
        handler.close()
    distributed.shutdown()
    if not distributed.is_main():
        return 0
    write_json_atomic(path, record(metrics=metrics))
    log.info("metrics %s; record %s", metrics, path)
    print(" ".join(f"{name}={value:.2f}" for name, value in metrics.items()))
    print(path)
    return 0
