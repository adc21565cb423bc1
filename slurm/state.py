"""What was submitted (``<run_dir>/slurm/submitted.json``) and what SLURM says about it now.

``run`` writes the submission file atomically: each job's stage, SLURM id (``123`` or, for an
array task, ``123_4``), log folder and dependencies, plus the jobs skipped as up to date.
``status`` and ``cancel`` read it back, ask ``sacct`` (accounting keeps finished, failed and
cancelled jobs; ``squeue`` forgets them) and parse its output with submitit's own reader, which
expands array ranges such as ``123_[0-3]``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from submitit.slurm.slurm import SlurmInfoWatcher

from resa_core.atomic import write_json_atomic
from resa_core.errors import UserError

SUBMITTED = Path("slurm") / "submitted.json"
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
                "DEADLINE", "SKIPPED", "NOT_RUN"}


@dataclass
class JobState:
    name: str
    stage: str
    job_id: str | None
    state: str
    reason: str
    logs: str


def submitted_path(run_dir: Path) -> Path:
    return Path(run_dir) / SUBMITTED


def write_submitted(run_dir: Path, pipeline_name: str, order: list[str], jobs: dict, skipped: dict) -> Path:
    """``jobs``: name -> {stage, job_id, logs, after}; ``skipped``: name -> {stage, reason}."""
    return write_json_atomic(submitted_path(run_dir), {"pipeline": pipeline_name, "order": order, "jobs": jobs,
                                                       "skipped": skipped})


def read_submitted(run_dir: Path) -> dict:
    path = submitted_path(run_dir)
    if not path.is_file():
        raise UserError(f"{path} not found: nothing was submitted to SLURM with run_dir={run_dir}")
    return json.loads(path.read_text())


def sacct_states(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """SLURM job id -> sacct fields (State, ExitCode, Reason); ids SLURM does not know yet are absent."""
    if not job_ids:
        return {}
    command = ["sacct", "-o", "JobID,State,ExitCode,Reason", "--parsable2"]
    for main_id in sorted({job_id.split("_")[0] for job_id in job_ids}):
        command += ["-j", main_id]
    try:
        output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise UserError(f"cannot ask SLURM accounting ({' '.join(command)}): {err}") from None
    return SlurmInfoWatcher().read_info(output)


def job_states(run_dir: Path) -> tuple[str, list[JobState]]:
    """The pipeline name and every job's current state; dependents of a failure are NOT_RUN."""
    submitted = read_submitted(run_dir)
    infos = sacct_states([job["job_id"] for job in submitted["jobs"].values()])
    states: dict[str, JobState] = {}
    for name in submitted["order"]:
        if name in submitted["skipped"]:
            skip = submitted["skipped"][name]
            states[name] = JobState(name, skip["stage"], None, "SKIPPED", skip["reason"], "")
            continue
        job = submitted["jobs"][name]
        info = infos.get(job["job_id"], {})
        state = (info.get("State") or "PENDING").split()[0]  # "CANCELLED by 0" -> CANCELLED
        failed_deps = [dep for dep in job["after"] if states.get(dep) and states[dep].state
                       in FINAL_STATES - {"COMPLETED", "SKIPPED"}]
        reason = info.get("Reason", "")
        if failed_deps and state in ("PENDING", "CANCELLED"):
            state, reason = "NOT_RUN", f"dependency {', '.join(failed_deps)} did not complete"
        states[name] = JobState(name, job["stage"], job["job_id"], state, reason, job["logs"])
    return submitted["pipeline"], list(states.values())


def error_tail(job: JobState, lines: int = 15) -> str:
    """The last ``lines`` lines of the job's submitit stderr log (``<logs>/<id>_0_log.err``)."""
    path = Path(job.logs) / f"{job.job_id}_0_log.err"
    if not path.is_file():
        return f"(no error log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def cancel(run_dir: Path) -> list[JobState]:
    """``scancel`` every submitted job that has not finished; returns the jobs cancelled."""
    _, states = job_states(run_dir)
    live = [job for job in states if job.job_id and job.state not in FINAL_STATES]
    if live:
        subprocess.run(["scancel", *[job.job_id for job in live]], check=True, timeout=60)
    return live
