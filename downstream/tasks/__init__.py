"""Registry of evaluation tasks.

A task declares its own config keys (added to the common ones of :mod:`downstream.config`),
the dataset roles whose features it needs, and a ``run`` that turns those features into the
flat metrics of the docs/contracts.md vocabulary. Add a task: write a module with a ``TASK``
and list it in ``_MODULES``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from downstream.features import FeatureSet
from resa_core.errors import UserError


@dataclass(frozen=True)
class Task:
    name: str
    schema: Mapping
    roles: tuple[str, ...]
    run: Callable[[dict[str, FeatureSet], dict, int], dict[str, float]]  # (features by role, config, seed)


def _registry() -> dict[str, Task]:
    from downstream.tasks import fewshot, knn, linear

    return {module.TASK.name: module.TASK for module in (knn, linear, fewshot)}


TASKS: dict[str, Task] = _registry()


def task_spec(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown task '{name}'; registered tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]
