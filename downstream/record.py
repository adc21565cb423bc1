"""The result record of docs/contracts.md §3: where it goes and what it holds.

One JSON file per (task, dataset, backbone, seed); the CLI writes it with
``resa_core.atomic.write_json_atomic``, so a reader sees no record or a complete one.
"""

from __future__ import annotations

import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from resa_core.atomic import sha256_json

RECORD_FORMAT_VERSION = 1  # docs/contracts.md §3


def record_path(run_dir: str | Path, task: str, dataset: str, backbone_sha256: str, seed: int) -> Path:
    """``<run>/records/<task>/<dataset>/<backbone-sha8>/seed<S>.json``."""
    return Path(run_dir) / "records" / task / dataset / backbone_sha256[:8] / f"seed{seed}.json"


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
    return {
        "format_version": RECORD_FORMAT_VERSION,
        "task": task,
        "dataset": dataset,
        "seed": seed,
        "metrics": {name: float(value) for name, value in (metrics or {}).items()} if error is None else {},
        "backbone": backbone,
        "config": config,
        "config_hash": sha256_json(config),
        "code_version": code_version(),
        "host": socket.gethostname(),
        "start_time": start_time,
        "end_time": utc_now(),
        "status": "ok" if error is None else "failed",
        "error": error,
    }
