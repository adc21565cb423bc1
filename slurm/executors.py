"""Submitting a pipeline's jobs through submitit, on SLURM or on this machine.

Both skip the jobs whose output is up to date (:func:`slurm.plan.plan`), so running a pipeline
again finishes only what is missing. SLURM: every remaining job is submitted at once; the jobs
of one stage (same resources) form one job array (``executor.batch()``) whose dependency is
``afterok`` on the jobs (or array tasks, ``123_4``) its tasks need, with
``--kill-on-invalid-dep=yes``, so the cluster orders them and drops the dependents of a failed
job. The submission is recorded in ``<run_dir>/slurm/submitted.json`` for ``status`` and
``cancel``. Local: submitit's ``LocalExecutor`` has no dependencies, so :func:`run_local`
submits a job when all its dependencies have succeeded, at most ``max_parallel`` at a time,
and marks the dependents of a failure as not run.

Ctrl-C (SIGINT) of a local run: the jobs' submitit controllers ignore it (``trap '' INT`` in
their setup; otherwise a controller dies with a traceback and SIGKILLs its task a second
later), the stage processes turn the first SIGINT into ``KeyboardInterrupt``
(:func:`slurm.jobs.run_stage`) so each stops cleanly (pretraining saves its last step
boundary), and :func:`run_local` forwards the signal to every running job, waits for them to
exit and raises :class:`Interrupted` naming them. Finished jobs have their done markers, so
the same command resumes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import submitit

from resa_core.errors import UserError
from slurm.jobs import SIGINT_IGNORED_ENV, StageJob
from slurm.pipeline import JobSpec, Pipeline
from slurm.plan import marker_path, plan, spec_hash
from slurm.state import FINAL_STATES, JobState, job_states, submitted_path, write_submitted

# How often the local runner checks its running jobs; a finished job's successor starts at once.
POLL_SECONDS = 0.25
# The controller's shell ignores SIGINT, and so does the controller it starts (Python keeps an
# inherited SIG_IGN); the stage process re-enables it (slurm.jobs.run_stage) unless the runner
# itself runs with SIGINT ignored (see local_setup).
LOCAL_SETUP = ("trap '' INT",)
# After Ctrl-C, how long to wait for the running stages to save and exit, re-sending SIGINT to
# any that has not yet installed its handler.
INTERRUPT_WAIT_SECONDS = 300
INTERRUPT_RESEND_SECONDS = 2.0


class Interrupted(Exception):
    """Ctrl-C stopped a local run; ``stopped`` names the jobs that were running."""

    def __init__(self, stopped: list[str]):
        super().__init__(", ".join(stopped))
        self.stopped = stopped


def executor_parameters(pipeline: Pipeline, job: JobSpec) -> dict:
    """submitit parameters of ``job`` (what ``--dry-run`` prints as sbatch options)."""
    res = job.resources
    params = {
        "name": f"{pipeline.name}-{job.stage}",
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
    return params


def _stage_job(pipeline: Pipeline, job: JobSpec) -> StageJob:
    return StageJob(job.command, job.argv, job.resources["cpus_per_task"], str(marker_path(pipeline, job)),
                    spec_hash(job))


def submit_slurm(pipeline: Pipeline) -> dict[str, str]:
    """Submit every job that is not up to date; returns job name -> SLURM job id.

    Refuses while an earlier submission of the same run directory still has unfinished jobs, so
    a job is never submitted twice to write the same outputs.
    """
    if submitted_path(pipeline.run_dir).is_file():
        live = [job.name for job in job_states(pipeline.run_dir)[1] if job.state not in FINAL_STATES]
        if live:
            raise UserError(f"{len(live)} job(s) of the last submission to {pipeline.run_dir} have not finished "
                            f"({', '.join(live[:5])}{', ...' if len(live) > 5 else ''}); wait for them "
                            f"(python -m slurm status {pipeline.run_dir} --wait) or cancel them first")
    skipped = _print_skipped_plan(pipeline)
    skipped_records = {job.name: {"stage": job.stage, "reason": skipped[job.name]}
                       for job in pipeline.jobs if skipped[job.name]}
    order = [job.name for job in pipeline.jobs]
    ids: dict[str, str] = {}
    records: dict[str, dict] = {}
    stages = list(dict.fromkeys(job.stage for job in pipeline.jobs))
    for stage in stages:
        todo = [job for job in pipeline.jobs if job.stage == stage and not skipped[job.name]]
        if not todo:
            continue
        folder = pipeline.run_dir / "slurm" / "logs" / stage
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=todo[0].resources[
            "max_requeue"])
        executor.update_parameters(**executor_parameters(pipeline, todo[0]))
        needs = sorted({ids[dep] for job in todo for dep in job.after if dep in ids})
        if needs:
            executor.update_parameters(slurm_additional_parameters={
                "dependency": "afterok:" + ":".join(needs), "kill-on-invalid-dep": "yes"})
        if len(todo) == 1:
            handles = [executor.submit(_stage_job(pipeline, todo[0]))]
        else:
            with executor.batch():
                handles = [executor.submit(_stage_job(pipeline, job)) for job in todo]
        for job, handle in zip(todo, handles, strict=True):
            ids[job.name] = handle.job_id
            records[job.name] = {"stage": stage, "job_id": handle.job_id, "logs": str(folder), "after":
                                 [dep for dep in job.after if dep in ids]}
            print(f"submitted {job.name}: SLURM job {handle.job_id}", flush=True)
        # after every stage, so that jobs already queued can be seen and cancelled if a later sbatch fails
        write_submitted(pipeline.run_dir, pipeline.name, [n for n in order if n in records or n in skipped_records],
                        records, skipped_records)
    write_submitted(pipeline.run_dir, pipeline.name, order, records, skipped_records)
    return ids


def _print_skipped_plan(pipeline: Pipeline) -> dict[str, str | None]:
    """:func:`slurm.plan.plan`, saying which jobs are skipped and why."""
    skipped = plan(pipeline)
    for name, reason in skipped.items():
        if reason:
            print(f"{name}: up to date, skipped ({reason})", flush=True)
    return skipped


def wait_slurm(run_dir: Path, poll_seconds: float = 3.0) -> tuple[str, list[JobState]]:
    """Block until every submitted job reached a final state; returns the pipeline name and final states."""
    while True:
        name, states = job_states(run_dir)
        if all(job.state in FINAL_STATES for job in states):
            return name, states
        time.sleep(poll_seconds)


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


def local_setup() -> list[str]:
    """The controller's shell lines: SIGINT ignored there, and in the stage too when this runner ignores it
    (started in the background or under ``nohup``: then no Ctrl-C can reach the runner to stop the run)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return [*LOCAL_SETUP, f"export {SIGINT_IGNORED_ENV}=1"]
    return list(LOCAL_SETUP)


def _submit_local(pipeline: Pipeline, job: JobSpec) -> submitit.Job:
    executor = submitit.AutoExecutor(folder=pipeline.run_dir / "logs" / job.name, cluster="local")
    executor.update_parameters(**executor_parameters(pipeline, job), local_setup=local_setup())
    return executor.submit(_stage_job(pipeline, job))


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux ``/proc/<pid>/task/<tid>/children``)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in children.read_text().split()]
            except OSError:  # the process ended meanwhile
                pass
    return found


def _send_sigint(handle: submitit.Job) -> None:
    process = getattr(handle, "_process", None)
    if process is None:
        return
    for pid in _descendants(process.pid):
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            pass


def _stop_running(running: dict[str, submitit.Job]) -> None:
    """Forward Ctrl-C to the running jobs and wait (bounded) until they have exited."""
    deadline = time.monotonic() + INTERRUPT_WAIT_SECONDS
    while running and time.monotonic() < deadline:
        for name, handle in list(running.items()):
            if handle.done():
                del running[name]
            else:
                _send_sigint(handle)
        time.sleep(INTERRUPT_RESEND_SECONDS if running else 0)


def run_local(pipeline: Pipeline) -> dict[str, str]:
    """Run every job that is not up to date on this machine in dependency order; job name -> final state."""
    skipped = _print_skipped_plan(pipeline)
    state = {job.name: "SKIPPED" if skipped[job.name] else "PENDING" for job in pipeline.jobs}
    running: dict[str, submitit.Job] = {}
    try:
        _run_local_loop(pipeline, state, running)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the saving short
        try:
            stopped = list(running)
            _stop_running(running)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        raise Interrupted(stopped) from None
    return state


def _run_local_loop(pipeline: Pipeline, state: dict[str, str], running: dict[str, submitit.Job]) -> None:
    while any(s in ("PENDING", "RUNNING") for s in state.values()):
        for job in pipeline.jobs:
            if state[job.name] != "PENDING":
                continue
            dep_states = [state[d] for d in job.after]
            if any(s in ("FAILED", "NOT_RUN") for s in dep_states):
                state[job.name] = "NOT_RUN"
                print(f"{job.name}: not run (a dependency failed)", flush=True)
            elif all(s in ("COMPLETED", "SKIPPED") for s in dep_states) and len(running) < pipeline.max_parallel:
                running[job.name] = _submit_local(pipeline, job)
                state[job.name] = "RUNNING"
                print(f"{job.name}: started (logs in {pipeline.run_dir / 'logs' / job.name})", flush=True)
        finished = [name for name, handle in running.items() if handle.done()]
        for name in finished:
            error = _first_error_line(running.pop(name))
            state[name] = "FAILED" if error else "COMPLETED"
            print(f"{name}: {state[name].lower()}" + (f": {error}" if error else ""), flush=True)
        if not finished:  # else back to the top at once: the freed slot takes the next ready job
            time.sleep(POLL_SECONDS)
