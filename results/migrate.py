"""``python -m results migrate RUN``: move format-1 records to the protocol-level layout of format 2.

Format 1 stored ``<run>/records/<task>/<dataset>/<backbone-sha8>/seed<S>.json`` and no protocol;
format 2 (docs/contracts.md §3) adds the protocol (the task's protocol keys of the record's own
stored config, :func:`downstream.record.protocol_of`) and a ``<protocol-sha8>`` path level. Each
old record is rewritten atomically at its new path, then the old file is removed, so a run
interrupted half-way is migrated by running the command again. Records already in format 2 are
left as they are. A format-1 record without a stored config cannot be migrated: error.
"""

from __future__ import annotations

import json
from pathlib import Path

from downstream.record import RECORD_FORMAT_VERSION, protocol_of, protocol_sha256, record_path
from resa_core.atomic import write_json_atomic
from resa_core.errors import UserError


def migrate_run(run_dir: str | Path) -> list[tuple[Path, Path]]:
    """Migrate every format-1 record under ``<run_dir>/records``; returns the (old, new) paths moved."""
    records_dir = Path(run_dir) / "records"
    if not records_dir.is_dir():
        raise UserError(f"no records directory {records_dir}")
    moved = []
    for path in sorted(records_dir.rglob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: not a valid JSON result record ({err})") from None
        if not isinstance(record, dict) or record.get("format_version") != 1:
            continue
        moved.append((path, _migrate_one(record, path, Path(run_dir))))
    for old, _ in moved:
        _remove_empty_parents(old, records_dir)
    return moved


def _migrate_one(record: dict, path: Path, run_dir: Path) -> Path:
    config = record.get("config")
    backbone = record.get("backbone")
    if not isinstance(config, dict) or not isinstance(backbone, dict) or "sha256" not in backbone:
        raise UserError(f"{path}: a format-1 record without its 'config' or 'backbone.sha256' cannot be migrated")
    protocol = protocol_of(record["task"], config)
    new = {**record, "format_version": RECORD_FORMAT_VERSION, "protocol": protocol,
           "protocol_sha256": protocol_sha256(protocol)}
    target = record_path(run_dir, record["task"], record["dataset"], backbone["sha256"], record["seed"], protocol)
    write_json_atomic(target, new)
    path.unlink()
    return target


def _remove_empty_parents(path: Path, stop: Path) -> None:
    for parent in path.parents:
        if parent == stop or not parent.is_dir() or any(parent.iterdir()):
            return
        parent.rmdir()
