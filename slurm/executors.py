"""Submitting a pipeline's jobs through submitit, on SLURM or on this machine.

SLURM: every job is submitted at once, each with ``--dependency=afterok:<ids of its
dependencies>`` and ``--kill-on-invalid-dep=yes``, so the cluster orders them and drops the
dependents of a failed job. Local: submitit's ``LocalExecutor`` has no dependencies, so
:func:`run_local` submits a job when all its dependencies have succeeded, at most
``max_parallel`` at a time, and marks the dependents of a failure as not run.
"""

from __future__ import annotations

import time
from pathlib import Path

import submitit

from slurm.jobs import run_stage
from slurm.pipeline import JobSpec, Pipeline

POLL_SECONDS = 1.0


def _executor(pipeline: Pipeline, job: JobSpec, cluster: str) -> submitit.AutoExecutor:
    res = job.resources
    executor = submitit.AutoExecutor(folder=pipeline.run_dir / "logs" / job.name, cluster=cluster)
    params = {
        "name": f"{pipeline.name}-{job.name}",
        "timeout_min": res["timeout_min"],
        "mem_gb": res["mem_gb"],
        "cpus_per_task": res["cpus_per_task"],
        "nodes": res["nodes"],
        "tasks_per_node": res["tasks_per_node"],
        "gpus_per_node": res["gpus_per_node"],
        "slurm_array_parallelism": res["array_parallelism"],
    }
    for key in ("partition", "account", "qos", "constraint", "exclude"):
        if res[key]:
            params[f"slurm_{key}"] = res[key]
    executor.update_parameters(**params)
    return executor


def _submit(pipeline: Pipeline, job: JobSpec, cluster: str, dependency_ids: list[str]) -> submitit.Job:
    executor = _executor(pipeline, job, cluster)
    if dependency_ids:
        executor.update_parameters(slurm_additional_parameters={
            "dependency": "afterok:" + ":".join(dependency_ids), "kill-on-invalid-dep": "yes"})
    return executor.submit(run_stage, job.command, job.argv, job.resources["cpus_per_task"])


def submit_slurm(pipeline: Pipeline) -> dict[str, submitit.Job]:
    submitted: dict[str, submitit.Job] = {}
    for job in pipeline.jobs:  # already in dependency order
        submitted[job.name] = _submit(pipeline, job, "slurm", [submitted[d].job_id for d in job.after])
        print(f"submitted {job.name}: SLURM job {submitted[job.name].job_id}", flush=True)
    return submitted


def _first_error_line(job: submitit.Job) -> str:
    try:
        job.result()
    except Exception as err:  # submitit wraps the job's exception with its traceback
        lines = [line for line in str(err).splitlines() if line.strip()]
        for line in reversed(lines):
            if "StageFailed" in line or "Error" in line:
                return line.strip()
        return lines[-1].strip() if lines else type(err).__name__
    return ""


def run_local(pipeline: Pipeline) -> dict[str, str]:
    """Run every job on this machine in dependency order; returns job name -> final state."""
    state = {job.name: "PENDING" for job in pipeline.jobs}
    running: dict[str, submitit.Job] = {}
    while any(s in ("PENDING", "RUNNING") for s in state.values()):
        for job in pipeline.jobs:
            if state[job.name] != "PENDING":
                continue
            dep_states = [state[d] for d in job.after]
            if any(s in ("FAILED", "NOT_RUN") for s in dep_states):
                state[job.name] = "NOT_RUN"
                print(f"{job.name}: not run (a dependency failed)", flush=True)
            elif all(s == "COMPLETED" for s in dep_states) and len(running) < pipeline.max_parallel:
                running[job.name] = _submit(pipeline, job, "local", [])
                state[job.name] = "RUNNING"
                print(f"{job.name}: started (logs in {pipeline.run_dir / 'logs' / job.name})", flush=True)
        for name, handle in list(running.items()):
            if handle.done():
                error = _first_error_line(handle)
                state[name] = "FAILED" if error else "COMPLETED"
                print(f"{name}: {state[name].lower()}" + (f": {error}" if error else ""), flush=True)
                del running[name]
        time.sleep(POLL_SECONDS)
    return state


def log_paths(pipeline: Pipeline, job: JobSpec) -> list[Path]:
    return sorted((pipeline.run_dir / "logs" / job.name).glob("*_log.*"))
