"""The protocol part of a record's identity (docs/contracts.md §3): declared per task, complete, and in the path."""

from __future__ import annotations

import pytest

from downstream.config import COMMON_SCHEMA, resolve_config
from downstream.record import NOT_PROTOCOL_KEYS, PROTOCOL_KEYS, protocol_of, record_path
from downstream.tasks import TASKS


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_config_key_of_every_task_is_declared_protocol_or_not(task: str) -> None:
    keys = set(COMMON_SCHEMA) | set(TASKS[task].schema)
    protocol, other = set(PROTOCOL_KEYS[task]), set(NOT_PROTOCOL_KEYS[task])
    assert not protocol & other, f"{task}: declared both ways: {sorted(protocol & other)}"
    assert protocol | other == keys, f"{task}: undeclared {sorted(keys - protocol - other)}, " \
                                     f"unknown {sorted((protocol | other) - keys)}"


def _path(task: str, *overrides: str):
    config = resolve_config(TASKS[task].schema, None, list(overrides))
    return record_path("run", task, "imagenet", "ab" * 32, 0, protocol_of(task, config))


@pytest.mark.parametrize("task, first, second", [
    ("lowshot", "label_subset=1percent", "label_subset=10percent"),
    ("lowshot", "epochs=20", "epochs=50"),
    ("knn", "protocol=weighted", "protocol=majority"),
    ("knn", "image_size=224", "image_size=160"),
    ("linear", "train_size=1000", "train_size=2000"),
    ("linear", "protocol=small", "protocol=imagenet"),
])
def test_two_protocols_of_one_backbone_and_seed_never_share_a_record_path(task, first, second) -> None:
    assert _path(task, first) != _path(task, second)
    assert _path(task, first).parent.parent.parent == _path(task, second).parent.parent.parent  # same task/dataset


@pytest.mark.parametrize("task, override", [("knn", "num_workers=0"), ("knn", "chunk_size=64"),
                                            ("fewshot", "episodes_per_solve=10"), ("linear", "batch_size=32")])
def test_keys_that_do_not_change_the_number_keep_the_record_path(task, override) -> None:
    assert _path(task, override) == _path(task)


def test_engine_tasks_are_named_after_their_protocol() -> None:
    assert protocol_of("coco_mask_rcnn_r50_c4_1x", {"MODEL": {"WEIGHTS": "x"}}) == {}
