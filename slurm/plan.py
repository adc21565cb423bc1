"""Which jobs of a pipeline must run: a job is skipped only when its output exists with the same config.

"The same config" is read from what the stage itself stored, so a changed config file (not
only a changed command line) reruns the stage:

- ``pretrain``: ``<output_dir>/checkpoint.pth`` holds every epoch and its stored ``config``
  equals the config the job's arguments resolve to now;
- ``downstream`` (frozen-backbone tasks, run with ``--name``): an ``ok`` result record for that
  backbone name and seed whose ``config_hash`` equals the hash of the resolved task config now,
  and, for a backbone file, whose ``sha256`` is that file's hash now;
- anything else (``converters``, ``results``, engine tasks): the done marker the job wrote on
  success, ``<run_dir>/slurm/done/<job>.json``, holds the hash of the same command line.

A job whose dependency runs always runs too (its input is about to change).
"""

from __future__ import annotations

import json
from pathlib import Path

from resa_core.atomic import sha256_file, sha256_json
from slurm.pipeline import JobSpec, Pipeline


def spec_hash(job: JobSpec) -> str:
    return sha256_json({"command": job.command, "argv": job.argv})


def marker_path(pipeline: Pipeline, job: JobSpec) -> Path:
    return pipeline.run_dir / "slurm" / "done" / f"{job.name}.json"


def plan(pipeline: Pipeline) -> dict[str, str | None]:
    """Job name -> why it is skipped (its output is up to date), or None when it must run."""
    skipped: dict[str, str | None] = {}
    for job in pipeline.jobs:  # dependency order
        if any(skipped[dep] is None for dep in job.after):
            skipped[job.name] = None
        else:
            skipped[job.name] = _up_to_date(pipeline, job)
    return skipped


def _up_to_date(pipeline: Pipeline, job: JobSpec) -> str | None:
    if job.command == "pretrain":
        return _pretrain_done(job.argv)
    if job.command == "downstream" and "--name" in job.argv:
        from downstream.cli import ENGINE_TASKS

        if job.argv[0] not in ENGINE_TASKS:
            return _record_done(job.argv)
    marker = marker_path(pipeline, job)
    if marker.is_file() and json.loads(marker.read_text()).get("spec_hash") == spec_hash(job):
        return f"done marker {marker} has the same command"
    return None


def _pretrain_done(argv: list[str]) -> str | None:
    import torch

    from pretrain.checkpoint import checkpoint_path
    from pretrain.config import resolve

    config = resolve(argv[0], argv[1:])
    ckpt = checkpoint_path(config["output_dir"])
    if not ckpt.is_file():
        return None
    state = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    if sha256_json(state.get("config")) != sha256_json(config) or state.get("epoch", 0) < config["epochs"]:
        return None
    return f"{ckpt} holds all {config['epochs']} epochs with the same config"


def _record_done(argv: list[str]) -> str | None:
    from downstream.cli import parse_args
    from downstream.config import resolve_config
    from downstream.datasets import dataset_spec
    from downstream.record import protocol_dir, protocol_of
    from downstream.tasks import task_spec

    args = parse_args(argv)
    task, dataset = task_spec(args.task), dataset_spec(args.dataset)
    config = resolve_config(task.schema, args.config, args.overrides, dataset.defaults)  # as downstream.cli
    config_hash = sha256_json(config)
    weights_sha = sha256_file(args.weights) if Path(args.weights).is_file() else None
    records = protocol_dir(args.run_dir, task.name, dataset.name, protocol_of(task.name, config))
    for path in sorted(records.glob(f"*/seed{args.seed}.json")):
        record = json.loads(path.read_text())
        backbone = record.get("backbone", {})
        if (record.get("status") == "ok" and backbone.get("name") == args.name
                and record.get("config_hash") == config_hash
                and (weights_sha is None or backbone.get("sha256") == weights_sha)):
            return f"ok record {path} with the same config hash"
    return None
