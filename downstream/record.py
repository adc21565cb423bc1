"""The result record of docs/contracts.md §3: where it goes, what it holds, and its protocol.

One JSON file per (task, dataset, protocol, backbone, seed) at
``<run>/records/<task>/<dataset>/<protocol-sha8>/<backbone-sha8>/seed<S>.json``; the CLI writes
it with ``resa_core.atomic.write_json_atomic``, so a reader sees no record or a complete one.

The *protocol* of a record is the part of its task config that defines what was measured
(label subset, subset sizes, resolution, k-NN rule, classifier schedule, ...): the keys that
:data:`PROTOCOL_KEYS` declares for its task, with their resolved values. It is stored in the
record and its hash is part of the path, so two protocols of one task, dataset, backbone and
seed (the 1 % and 10 % low-shot runs, weighted vs majority k-NN) never overwrite each other,
and a table selects between them by protocol key. Keys left out (:data:`NOT_PROTOCOL_KEYS`)
change how a number is computed, not which number it is (batch sizes for feature extraction,
workers, the list of k reported). Engine tasks (Detectron2, MMSegmentation) are named after
their whole protocol (their config file), so their protocol is empty.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from resa_core.atomic import sha256_json

RECORD_FORMAT_VERSION = 2  # docs/contracts.md §3; version 1 had no protocol level (python -m results migrate)

# Common config keys (downstream/config.py COMMON_SCHEMA) that define the evaluation data.
_DATA_KEYS = ("image_size", "resize_size", "resize_interpolation", "normalization", "train_size", "test_size",
              "subset_seed", "label_subset")
PROTOCOL_KEYS: dict[str, tuple[str, ...]] = {
    "knn": _DATA_KEYS + ("protocol", "temperature", "top5_rule"),
    "linear": _DATA_KEYS + ("protocol", "imagenet", "epochs", "lr_start", "lr_end", "weight_decay",
                            "train_batch_size"),
    "fewshot": _DATA_KEYS + ("queries", "episodes", "C"),
    "lowshot": _DATA_KEYS + ("epochs", "train_batch_size", "encoder_lr", "head_lr", "weight_decay"),
    "logreg-transfer": _DATA_KEYS + ("wd_min_exp", "wd_max_exp", "wd_values", "valid_fraction", "max_iter",
                                     "warm_start", "metric"),
    "clustering": _DATA_KEYS + ("samples",),
}
# Every other key of each task's schema, and why it is not part of the protocol.
_COMMON_NOT_PROTOCOL = ("data_root", "batch_size", "num_workers")  # where the data is; extraction batch; I/O
NOT_PROTOCOL_KEYS: dict[str, tuple[str, ...]] = {
    # k and the bucket are in the metric name (buckets only add metrics); memory
    "knn": _COMMON_NOT_PROTOCOL + ("ks", "majority_ks", "chunk_size", "buckets"),
    "linear": _COMMON_NOT_PROTOCOL,
    "fewshot": _COMMON_NOT_PROTOCOL + ("ways", "shots", "episodes_per_solve"),  # in the metric name; memory
    "lowshot": _COMMON_NOT_PROTOCOL,
    "logreg-transfer": _COMMON_NOT_PROTOCOL,
    "clustering": _COMMON_NOT_PROTOCOL + ("tsne_layer", "tsne_samples"),  # the plot only
}


def protocol_of(task: str, config: Mapping) -> dict:
    """The protocol-defining values of ``config`` (``{}`` for engine tasks, named after their protocol)."""
    return {key: config[key] for key in PROTOCOL_KEYS.get(task, ()) if key in config}


def protocol_sha256(protocol: Mapping) -> str:
    return sha256_json(dict(protocol))


def protocol_dir(run_dir: str | Path, task: str, dataset: str, protocol: Mapping | None = None) -> Path:
    """``<run>/records/<task>/<dataset>/<protocol-sha8>``: the records of every backbone and seed of a protocol."""
    return Path(run_dir) / "records" / task / dataset / protocol_sha256(protocol or {})[:8]


def record_path(run_dir: str | Path, task: str, dataset: str, backbone_sha256: str, seed: int,
                protocol: Mapping | None = None) -> Path:
    """``<run>/records/<task>/<dataset>/<protocol-sha8>/<backbone-sha8>/seed<S>.json`` (protocol: ``{}``)."""
    return protocol_dir(run_dir, task, dataset, protocol) / backbone_sha256[:8] / f"seed{seed}.json"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def code_version() -> str:
    """``git rev-parse HEAD`` of the checkout holding this package, or ``"unknown"``."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
            text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def build_record(
    task: str, dataset: str, seed: int, backbone: dict, config: dict, start_time: str,
    metrics: dict[str, float] | None = None, error: str | None = None,
) -> dict:
    """A complete record: status ``ok`` with metrics, or ``failed`` with the error and no metrics."""
    protocol = protocol_of(task, config)
    return {
        "format_version": RECORD_FORMAT_VERSION,
        "task": task,
        "dataset": dataset,
        "seed": seed,
        "metrics": {name: float(value) for name, value in (metrics or {}).items()} if error is None else {},
        "backbone": backbone,
        "protocol": protocol,
        "protocol_sha256": protocol_sha256(protocol),
        "config": config,
        "config_hash": sha256_json(config),
        "code_version": code_version(),
        "host": socket.gethostname(),
        "start_time": start_time,
        "end_time": utc_now(),
        "status": "ok" if error is None else "failed",
        "error": error,
    }
