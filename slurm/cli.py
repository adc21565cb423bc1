"""``python -m slurm run PIPELINE.yaml [--executor slurm|local] [--dry-run] [key=value ...]``.

Turns a pipeline file into submitit jobs with dependencies and runs them on SLURM or on this
machine; with ``--dry-run`` prints the job graph and each job's resources without submitting.
Exits non-zero when any job failed or was not run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from slurm.executors import run_local, submit_slurm
from slurm.pipeline import Pipeline, load_pipeline


def print_graph(pipeline: Pipeline) -> None:
    print(f"pipeline {pipeline.name}: {len(pipeline.jobs)} jobs, run dir {pipeline.run_dir}, "
          f"executor {pipeline.executor}")
    for job in pipeline.jobs:
        res = job.resources
        print(f"- {job.name} [{job.stage}] after: {', '.join(job.after) or '-'}")
        print(f"    python -m {job.command} {' '.join(job.argv)}")
        print(f"    cpus={res['cpus_per_task']} mem={res['mem_gb']}G time={res['timeout_min']}min "
              f"nodes={res['nodes']} tasks/node={res['tasks_per_node']} gpus/node={res['gpus_per_node']} "
              f"partition={res['partition'] or '-'} account={res['account'] or '-'} qos={res['qos'] or '-'}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slurm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="submit a pipeline")
    run.add_argument("pipeline", help="pipeline YAML (see configs/pipelines/)")
    run.add_argument("--executor", choices=("local", "slurm"), help="override the file's executor")
    run.add_argument("--dry-run", action="store_true", help="print the job graph, submit nothing")
    run.epilog = "Further arguments are key=value overrides (run_dir=..., vars.epochs=...), in any position."
    args, overrides = parser.parse_known_args(argv)
    if any(item.startswith("-") or "=" not in item for item in overrides):
        parser.error(f"unrecognised arguments: {' '.join(overrides)} (overrides are key=value)")

    overrides = overrides + ([f"executor={args.executor}"] if args.executor else [])
    pipeline = load_pipeline(args.pipeline, overrides)
    print_graph(pipeline)
    if args.dry_run:
        return 0
    if pipeline.executor == "slurm":
        submit_slurm(pipeline)
        return 0
    states = run_local(pipeline)
    bad = {name: s for name, s in states.items() if s != "COMPLETED"}
    if pipeline.report and Path(pipeline.report).is_file():
        print(Path(pipeline.report).read_text())
    if bad:
        print(f"pipeline {pipeline.name}: {len(bad)} job(s) did not complete: "
              + ", ".join(f"{n} ({s.lower()})" for n, s in bad.items()), file=sys.stderr)
        return 1
    print(f"pipeline {pipeline.name}: all {len(states)} jobs completed; outputs in {pipeline.run_dir}")
    return 0
