"""Load every result record of a run into one tidy DataFrame (one row per record x metric).

Records live at ``<run>/records/<task>/<dataset>/<protocol-sha8>/<backbone-sha8>/seed<S>.json``
(docs/contracts.md §3). Nothing is skipped silently: a file that is not valid JSON, lacks a
field, or disagrees with its own path is a :class:`UserError` naming the file; a record of the
old layout (format 1, no protocol level) is refused with the command that converts the run
(:mod:`results.migrate`). A failed record has no metrics; it still gets one row (``metric`` and
``value`` empty) so that tables can say the cell failed instead of "not run". Records of one
name and seed but different protocols or pretraining lengths are all loaded: a table tells
them apart by its columns' protocol keys and ``pretrain_epochs`` (:mod:`results.aggregate`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from resa_core.atomic import sha256_json
from resa_core.errors import UserError

RECORD_COLUMNS = [
    "task", "dataset", "backbone", "method", "arch", "backbone_sha256", "seed",
    "metric", "value", "status", "error", "config_hash", "code_version", "path", "protocol", "protocol_sha256",
    "pretrain_epochs",
]
REQUIRED_FIELDS = ("format_version", "task", "dataset", "seed", "metrics", "backbone", "protocol",
                   "protocol_sha256", "config_hash", "code_version", "status", "error")
FORMAT_VERSION = 2
REQUIRED_BACKBONE_FIELDS = ("name", "sha256", "method", "arch")
STATUSES = ("ok", "failed")


def load_records(run_dir: str | Path) -> pd.DataFrame:
    """All records under ``<run_dir>/records`` as rows of :data:`RECORD_COLUMNS`, sorted by path."""
    records_dir = Path(run_dir) / "records"
    paths = sorted(records_dir.rglob("*.json")) if records_dir.is_dir() else []
    if not paths:
        raise UserError(f"no result records under {records_dir}")
    rows = [row for path in paths for row in _record_rows(path, records_dir)]
    return pd.DataFrame(rows, columns=RECORD_COLUMNS)


def _record_rows(path: Path, records_dir: Path) -> list[dict]:
    record = _read_record(path, records_dir)
    _check_matches_path(record, path, records_dir)
    backbone = record["backbone"]
    common = {
        "task": record["task"], "dataset": record["dataset"], "backbone": backbone["name"],
        "method": backbone["method"], "arch": backbone["arch"], "backbone_sha256": backbone["sha256"],
        "seed": record["seed"], "status": record["status"], "error": record["error"],
        "config_hash": record["config_hash"], "code_version": record["code_version"], "path": str(path),
        "protocol": json.dumps(record["protocol"], sort_keys=True),  # JSON text, for layout protocol filters
        "protocol_sha256": record["protocol_sha256"],
        "pretrain_epochs": backbone.get("pretrain_epochs"),
    }
    metrics = record["metrics"]
    if not metrics:
        return [{**common, "metric": None, "value": float("nan")}]
    return [{**common, "metric": name, "value": float(value)} for name, value in metrics.items()]


def _read_record(path: Path, records_dir: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a valid JSON result record ({err})") from None
    if not isinstance(record, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(record).__name__}")
    if record.get("format_version") == 1:
        raise UserError(f"{path}: a format-1 record (its path has no protocol level); convert the run with "
                        f"'python -m results migrate {records_dir.parent}'")
    missing = [key for key in REQUIRED_FIELDS if key not in record]
    if missing:
        raise UserError(f"{path}: result record lacks field(s) {', '.join(missing)}")
    if record["format_version"] != FORMAT_VERSION:
        raise UserError(f"{path}: format_version {record['format_version']!r} is not supported (expected "
                        f"{FORMAT_VERSION})")
    if record["status"] not in STATUSES:
        raise UserError(f"{path}: status {record['status']!r} is not one of {', '.join(STATUSES)}")
    backbone = record["backbone"]
    if not isinstance(backbone, dict) or any(key not in backbone for key in REQUIRED_BACKBONE_FIELDS):
        raise UserError(f"{path}: 'backbone' must be an object with {', '.join(REQUIRED_BACKBONE_FIELDS)}")
    _check_metrics(record["metrics"], path)
    if not isinstance(record["protocol"], dict) or sha256_json(record["protocol"]) != record["protocol_sha256"]:
        raise UserError(f"{path}: 'protocol_sha256' is not the hash of 'protocol' (edited by hand?)")
    return record


def _check_metrics(metrics: object, path: Path) -> None:
    if not isinstance(metrics, dict):
        raise UserError(f"{path}: 'metrics' must be an object of name -> number")
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{path}: metric '{name}' must be a number, got {value!r}")


def _check_matches_path(record: dict, path: Path, records_dir: Path) -> None:
    """The path encodes task/dataset/protocol/backbone/seed; a record that contradicts it was misplaced or edited."""
    parts = path.relative_to(records_dir).parts
    expected = (str(record["task"]), str(record["dataset"]), str(record["protocol_sha256"])[:8],
                str(record["backbone"]["sha256"])[:8], f"seed{record['seed']}.json")
    if parts != expected:
        raise UserError(
            f"{path}: record says {'/'.join(expected)} but lies at {'/'.join(parts)} "
            "(expected <task>/<dataset>/<protocol-sha8>/<backbone-sha8>/seed<S>.json)"
        )
