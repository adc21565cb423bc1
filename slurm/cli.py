"""``python -m slurm {run,status,cancel}``: run a pipeline file, see where it stands, stop it.

    python -m slurm run PIPELINE.yaml [--executor slurm|local] [--dry-run] [--wait] [key=value ...]
    python -m slurm status PIPELINE.yaml|RUN_DIR [--wait] [key=value ...]
    python -m slurm cancel PIPELINE.yaml|RUN_DIR [key=value ...]

``run`` turns a pipeline file into submitit jobs with dependencies, skipping jobs whose output
is up to date; ``--dry-run`` prints the job graph and each job's sbatch parameters without
submitting. Locally it waits and exits non-zero when any job failed or was not run; on SLURM it
submits and returns, or with ``--wait`` waits and exits like ``status``. ``status`` prints each
job's SLURM state and logs, and for a failed job the tail of its error log; it exits 1 when a
job failed or was not run. ``cancel`` cancels a pipeline's unfinished jobs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from slurm.executors import Interrupted, executor_parameters, run_local, submit_slurm, wait_slurm
from slurm.pipeline import Pipeline, load_pipeline
from slurm.plan import plan
from slurm.state import JobState, cancel, error_tail, job_states

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C'd command
BAD_STATES = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "NOT_RUN"}


def sbatch_options(stage_jobs: int, params: dict, max_requeue: int) -> str:
    """The sbatch options submitit will use for one job (or one array of ``stage_jobs`` tasks)."""
    options = [f"--job-name={params['name']}", f"--time={params['timeout_min']}", f"--mem={params['mem_gb']}G",
               f"--cpus-per-task={params['cpus_per_task']}", f"--nodes={params['nodes']}",
               f"--ntasks-per-node={params['tasks_per_node']}"]
    if params["gpus_per_node"]:
        options.append(f"--gpus-per-node={params['gpus_per_node']}")
    options += [f"--{key}={params['slurm_' + key]}" for key in ("partition", "account", "qos", "constraint",
                                                                   "exclude") if "slurm_" + key in params]
    if stage_jobs > 1:
        options.append(f"--array=0-{stage_jobs - 1}%{params['slurm_array_parallelism']}")
    options += ["--signal=USR2@90", "--open-mode=append", f"(requeues <= {max_requeue})"]
    return " ".join(options)


def print_graph(pipeline: Pipeline, skipped: dict[str, str | None]) -> None:
    print(f"pipeline {pipeline.name}: {len(pipeline.jobs)} jobs, run dir {pipeline.run_dir}, "
          f"executor {pipeline.executor}")
    for job in pipeline.jobs:
        res = job.resources
        stage_jobs = sum(other.stage == job.stage for other in pipeline.jobs)
        print(f"- {job.name} [{job.stage}] after: {', '.join(job.after) or '-'}"
              + (f"  (up to date, skipped: {skipped[job.name]})" if skipped[job.name] else ""))
        print(f"    python -m {job.command} {' '.join(job.argv)}")
        print(f"    cpus={res['cpus_per_task']} mem={res['mem_gb']}G time={res['timeout_min']}min "
              f"nodes={res['nodes']} tasks/node={res['tasks_per_node']} gpus/node={res['gpus_per_node']} "
              f"partition={res['partition'] or '-'} account={res['account'] or '-'} qos={res['qos'] or '-'}")
        print(f"    sbatch {sbatch_options(stage_jobs, executor_parameters(pipeline, job), res['max_requeue'])}")


def print_status(pipeline_name: str, states: list[JobState]) -> int:
    """Print one line per job and the error tail of each failed job; 1 when any job failed or was not run."""
    print(f"pipeline {pipeline_name}:")
    for job in states:
        where = f" logs {job.logs}" if job.logs else ""
        reason = f" ({job.reason})" if job.reason not in ("", "None") and job.state != "COMPLETED" else ""
        print(f"  {job.name:<28} {job.stage:<12} {job.job_id or '-':<10} {job.state:<10}{reason}{where}")
    failed = [job for job in states if job.state in BAD_STATES - {"NOT_RUN"}]
    for job in failed:
        print(f"\nstage {job.stage} failed: job {job.name} (SLURM {job.job_id}, {job.state}); "
              f"tail of its error log:\n{error_tail(job)}")
    not_run = [job.name for job in states if job.state == "NOT_RUN"]
    if not_run:
        print(f"\nnot run because a dependency failed: {', '.join(not_run)}")
    return 1 if failed or not_run else 0


def _run_dir(target: str, overrides: list[str]) -> Path:
    path = Path(target)
    return path if path.is_dir() else load_pipeline(path, overrides).run_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slurm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="submit a pipeline")
    run.add_argument("pipeline", help="pipeline YAML (see configs/pipelines/)")
    run.add_argument("--executor", choices=("local", "slurm"), help="override the file's executor")
    run.add_argument("--dry-run", action="store_true", help="print the job graph, submit nothing")
    run.add_argument("--wait", action="store_true", help="on SLURM, wait for the jobs and report like status")
    run.epilog = "Further arguments are key=value overrides (run_dir=..., vars.epochs=...), in any position."
    for action in ("status", "cancel"):
        one = sub.add_parser(action, help=f"{action} of a submitted pipeline")
        one.add_argument("target", help="the pipeline YAML (with the same overrides) or its run directory")
    sub.choices["status"].add_argument("--wait", action="store_true", help="wait until every job has finished")
    args, overrides = parser.parse_known_args(argv)
    if any(item.startswith("-") or "=" not in item for item in overrides):
        parser.error(f"unrecognised arguments: {' '.join(overrides)} (overrides are key=value)")

    if args.action == "status":
        run_dir = _run_dir(args.target, overrides)
        return print_status(*job_states(run_dir)) if not args.wait else print_status(*wait_slurm(run_dir))
    if args.action == "cancel":
        cancelled = cancel(_run_dir(args.target, overrides))
        print(f"cancelled {len(cancelled)} job(s): {', '.join(job.name for job in cancelled) or '-'}")
        return 0
    overrides = overrides + ([f"executor={args.executor}"] if args.executor else [])
    pipeline = load_pipeline(args.pipeline, overrides)
    if args.dry_run:
        print_graph(pipeline, plan(pipeline))
        return 0
    print_graph(pipeline, {job.name: None for job in pipeline.jobs})
    if pipeline.executor == "slurm":
        submit_slurm(pipeline)
        if not args.wait:
            print(f"status: python -m slurm status {pipeline.run_dir}")
            return 0
        return print_status(*wait_slurm(pipeline.run_dir))
    try:
        states = run_local(pipeline)
    except Interrupted as stop:
        again = " ".join(["python -m slurm run", args.pipeline, *overrides])
        print(f"interrupted: stopped {', '.join(stop.stopped) or 'nothing running'} (each saved what it had: "
              f"pretraining its last step, finished jobs their outputs); resume with: {again}", file=sys.stderr)
        return EXIT_INTERRUPTED
    bad = {name: s for name, s in states.items() if s not in ("COMPLETED", "SKIPPED")}
    if pipeline.report and Path(pipeline.report).is_file():
        print(Path(pipeline.report).read_text())
    if bad:
        print(f"pipeline {pipeline.name}: {len(bad)} job(s) did not complete: "
              + ", ".join(f"{n} ({s.lower()})" for n, s in bad.items()), file=sys.stderr)
        return 1
    print(f"pipeline {pipeline.name}: all {len(states)} jobs completed or up to date; outputs in {pipeline.run_dir}")
    return 0
