"""Registry of evaluation tasks.

A task declares its own config keys (added to the common ones of :mod:`downstream.config`),
the dataset roles whose features it needs, and a ``run`` that turns those features into the
flat metrics of the docs/contracts.md vocabulary. Add a task: write a module with a ``TASK``
and list it in ``_MODULES``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


def _registry() -> dict[str, Task]:
    from downstream.tasks import clustering, fewshot, knn, linear, logreg_transfer, lowshot

    modules = (knn, linear, fewshot, lowshot, logreg_transfer, clustering)
    return {module.TASK.name: module.TASK for module in modules}


TASKS: dict[str, Task] = _registry()


def task_spec(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown task '{name}'; registered tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]
