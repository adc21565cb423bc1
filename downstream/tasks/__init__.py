"""Registry of evaluation tasks.

A task declares its own config keys (added to the common ones of :mod:`downstream.config`),
the dataset roles whose features it needs, and a ``run`` that turns those features into the
flat metrics of the docs/contracts.md vocabulary. Add a task: write a module with a ``TASK``
and list it in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from downstream.datasets import DatasetSpec
from resa_core.errors import UserError


@dataclass(frozen=True)
class TaskContext:
    """What tasks that train on images, or need the run directory or the weights file, get from the CLI."""

    encoder: nn.Module
    arch: str | None
    dataset: DatasetSpec
    run_dir: Path
    weights: str  # the --weights argument (a file, random:<arch> or pixels)
    backbone_sha256: str


@dataclass(frozen=True)
class Task:
    """``run(features by role, config, seed)``; ``optional_roles`` are used when the dataset has them.

    When ``on_images(config)`` is true the task trains on images instead (fine-tuning, the
    augmented ImageNet linear probe) and is called as ``run(context, config, seed)``.
    """

    name: str
    schema: Mapping
    roles: tuple[str, ...]
    run: Callable[..., dict[str, float]]
    optional_roles: tuple[str, ...] = ()
    on_images: Callable[[dict], bool] = lambda config: False
    uses_context: bool = False  # feature tasks that also need the run directory get ``context=``
    multilabel: bool = False  # accepts multi-label datasets (DatasetSpec.multilabel: bit-mask labels)
    # The reference protocol's evaluation view (image_size, resize_size, resize_interpolation, ...)
    # over the dataset's defaults, for image-file datasets (not the grey array datasets).
    image_view: Mapping = field(default_factory=dict)

    def dataset_defaults(self, dataset: DatasetSpec) -> dict:
        """The dataset's config defaults with this task's image view on top (file-backed datasets)."""
        return dict(dataset.defaults) if dataset.grey else {**dataset.defaults, **self.image_view}


class _TaskRegistry(Mapping):
    """Task name -> :class:`Task`, importing a task's module on first use only.

    A job runs one task, so it imports that task's dependencies only (scikit-learn, which the
    clustering and logreg-transfer tasks need, costs 2-3 s of start-up in every other job).
    """

    def __init__(self, modules: Mapping[str, str]):
        self._modules = dict(modules)

    def __getitem__(self, name: str) -> Task:
        task = importlib.import_module(f"downstream.tasks.{self._modules[name]}").TASK
        if task.name != name:
            raise RuntimeError(f"downstream.tasks.{self._modules[name]} defines task '{task.name}', not '{name}'")
        return task

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


# Task name -> its module under downstream/tasks/.
_MODULES = {"knn": "knn", "linear": "linear", "fewshot": "fewshot", "lowshot": "lowshot",
            "logreg-transfer": "logreg_transfer", "clustering": "clustering"}
TASKS: Mapping[str, Task] = _TaskRegistry(_MODULES)


def task_spec(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown task '{name}'; registered tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]
