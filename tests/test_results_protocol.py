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


def test_the_pipeline_planner_finds_a_done_record_under_its_protocol_only(tmp_path) -> None:
    """slurm.plan skips a downstream job whose ok record (same config) lies at the protocol-level path."""
    from downstream.cli import parse_args
    from downstream.datasets import dataset_spec
    from downstream.record import build_record
    from resa_core.atomic import write_json_atomic
    from slurm.plan import _record_done

    def argv(subset: str) -> list[str]:
        return ["knn", "--dataset", "cifar10", "--weights", "pixels", "--name", "pixels", "--run-dir",
                str(tmp_path), "--seed", "0", f"label_subset={subset}"]

    args = parse_args(argv("1percent"))
    config = resolve_config(TASKS["knn"].schema, None, args.overrides, dataset_spec("cifar10").defaults)
    backbone = {"name": "pixels", "path": "pixels", "sha256": "cd" * 32, "method": None, "arch": None,
                "pretrain_epochs": None}
    record = build_record("knn", "cifar10", 0, backbone, config, "2026-01-01T00:00:00+00:00", metrics={"top1_k5": 1.0})
    write_json_atomic(record_path(tmp_path, "knn", "cifar10", "cd" * 32, 0, protocol_of("knn", config)), record)
    assert _record_done(argv("1percent")) is not None
    assert _record_done(argv("10percent")) is None  # another protocol: must run
