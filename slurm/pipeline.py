"""Pipeline files (DESIGN.md contract 4): YAML naming stages, their commands and dependencies.

A stage runs one stage entry point (``pretrain``, ``converters``, ``downstream``, ``results``)
once per point of its ``matrix`` (the product of its variables; a value may be a mapping,
addressed as ``{var[field]}``). ``args`` are formatted with the matrix point, ``run_dir`` and
the pipeline ``vars``. ``after`` names earlier stages: a job depends on those jobs of each named
stage that agree with it on every matrix variable both share (all of them when none is
shared), so ``convert(method=resa)`` waits for ``pretrain(method=resa)`` only. A mapping
value is identified by its ``name`` field, both in job names and in this matching.
Command-line ``key=value`` overrides may change ``run_dir``, ``executor``, ``max_parallel``,
``vars.*`` and ``resources.*`` (strictly: unknown keys are errors).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from resa_core.config import merge_strict, parse_overrides, read_yaml
from resa_core.errors import UserError

COMMANDS = ("pretrain", "converters", "downstream", "results")

# Cluster-wide defaults in one place; a stage's ``resources`` overrides any of them.
DEFAULT_RESOURCES: dict = {
    "cpus_per_task": 2,
    "mem_gb": 8,
    "timeout_min": 60,
    "nodes": 1,
    "tasks_per_node": 1,
    "gpus_per_node": 0,
    "partition": None,
    "account": None,
    "qos": None,
    "constraint": None,
    "exclude": None,
    "array_parallelism": 32,
    "max_requeue": 3,  # pre-emption / time-limit requeues of a checkpointable stage (submitit's max_num_timeout)
}
PIPELINE_SCHEMA: dict = {
    "name": "pipeline",
    "run_dir": "runs/pipeline",
    "executor": "local",
    "max_parallel": 2,
    "report": None,
    "vars": {},
    "resources": DEFAULT_RESOURCES,
    "stages": [],
}
STAGE_KEYS = {"name", "command", "args", "matrix", "after", "resources"}


@dataclass
class JobSpec:
    """One submitit job: a stage entry point with its arguments, resources and dependencies."""

    name: str
    stage: str
    command: str
    argv: list[str]
    resources: dict
    point: dict = field(default_factory=dict)
    after: list[str] = field(default_factory=list)


@dataclass
class Pipeline:
    name: str
    run_dir: Path
    executor: str
    max_parallel: int
    report: str | None
    jobs: list[JobSpec]

    def job(self, name: str) -> JobSpec:
        return next(job for job in self.jobs if job.name == name)


def _format(template: str, context: dict, where: str) -> str:
    try:
        return template.format(**context)
    except (KeyError, IndexError, AttributeError) as err:
        raise UserError(f"{where}: '{template}' names an unknown variable {err}") from None


def _matrix_points(matrix: dict) -> list[dict]:
    if not matrix:
        return [{}]
    names = list(matrix)
    values = [v if isinstance(v, list) else [v] for v in matrix.values()]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def _identity(value):
    return value.get("name", next(iter(value.values()), "")) if isinstance(value, dict) else value


def _point_label(point: dict) -> str:
    return "-".join(str(_identity(value)) for value in point.values())


def _shared_agree(a: dict, b: dict) -> bool:
    return all(_identity(a[k]) == _identity(b[k]) for k in set(a) & set(b))


def _format_values(value, context: dict, where: str):
    """Format the strings inside a matrix value (which may use ``{run_dir}`` and ``vars``)."""
    if isinstance(value, dict):
        return {k: _format_values(v, context, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_format_values(v, context, where) for v in value]
    return _format(value, context, where) if isinstance(value, str) else value


def load_pipeline(path: str | Path, overrides: Sequence[str] = ()) -> Pipeline:
    """Read, validate and expand a pipeline file into jobs in dependency order."""
    raw = read_yaml(path)
    config = merge_strict(PIPELINE_SCHEMA, {k: v for k, v in raw.items() if k != "vars"}, str(path))
    config["vars"] = dict(raw.get("vars") or {})
    if overrides:
        config = merge_strict(config, parse_overrides(overrides), "command-line override")
    if config["executor"] not in ("local", "slurm"):
        raise UserError(f"executor '{config['executor']}' unknown; expected local or slurm")
    run_dir = Path(config["run_dir"])
    base_context = {"run_dir": str(run_dir), **config["vars"]}
    jobs: list[JobSpec] = []
    stage_jobs: dict[str, list[JobSpec]] = {}
    for index, stage in enumerate(config["stages"]):
        where = f"{path}: stages[{index}]"
        if not isinstance(stage, dict) or set(stage) - STAGE_KEYS or not {"name", "command"} <= set(stage):
            raise UserError(f"{where}: a stage needs name and command, and may have only {sorted(STAGE_KEYS)}")
        if stage["command"] not in COMMANDS:
            raise UserError(f"{where}: command '{stage['command']}' unknown; expected one of {COMMANDS}")
        for dep in stage.get("after", []):
            if dep not in stage_jobs:
                raise UserError(f"{where}: 'after' names '{dep}', which is not an earlier stage")
        resources = merge_strict(config["resources"], stage.get("resources") or {}, where + ".resources")
        jobs_here = []
        matrix = _format_values(stage.get("matrix") or {}, base_context, where)
        for point in _matrix_points(matrix):
            context = {**base_context, **point}
            label = _point_label(point)
            job = JobSpec(
                name=f"{stage['name']}-{label}" if label else stage["name"],
                stage=stage["name"],
                command=stage["command"],
                argv=[_format(str(arg), context, where) for arg in stage.get("args", [])],
                resources=resources,
                point=point,
                after=[dep.name for dep_stage in stage.get("after", []) for dep in stage_jobs[dep_stage]
                       if _shared_agree(point, dep.point)],
            )
            jobs_here.append(job)
        stage_jobs[stage["name"]] = jobs_here
        jobs += jobs_here
    if len({job.name for job in jobs}) != len(jobs):
        raise UserError(f"{path}: two jobs got the same name; give matrix values distinct names")
    report = _format(config["report"], base_context, f"{path}: report") if config["report"] else None
    return Pipeline(config["name"], run_dir, config["executor"], config["max_parallel"], report, jobs)
