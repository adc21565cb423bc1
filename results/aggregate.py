"""Reduce the records to one cell per (layout row, layout column): mean, std and n over seeds.

Choices, stated once here and in every rendered table:

- ``std`` is the sample standard deviation over seeds (``ddof=1``); with one seed it is empty.
- A column with a ``ci_metric`` (few-shot) carries ``ci95``: the run's own 95% CI over episodes
  when n == 1, the mean of the per-seed CIs when n > 1 (a typical width, not a pooled CI).
- Only ``ok`` records contribute. A cell is ``failed`` when its only records failed (their
  errors are the reason), ``not run`` when there is no record for the row/task/dataset at all,
  and ``not measured`` when ok records exist but none holds the metric. Seeds that failed
  beside ok seeds are excluded from the mean and named in the reason.
- Every row x column of the layout is present, whatever the records hold.
- Where the layout names published numbers, each cell carries ``published`` (the paper's number,
  empty where the paper has none) and ``delta`` = mean - published (empty unless both exist).
"""

from __future__ import annotations

import json

import pandas as pd

from results.layout import Column, Layout

CELL_COLUMNS = [
    "row", "column", "task", "dataset", "metric", "status", "n", "mean", "std", "ci95", "seeds",
    "reason", "published", "delta", "backbone_sha256", "code_version", "config_hash",
]


def aggregate_cells(records: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """One row per layout cell, in row-major layout order, with columns :data:`CELL_COLUMNS`."""
    cells = [_compared(_cell(records, row, column), layout, row, column)
             for row in layout.rows for column in layout.columns]
    return pd.DataFrame(cells, columns=CELL_COLUMNS)


def _compared(cell: dict, layout: Layout, row: str, column: Column) -> dict:
    published = None
    if layout.published is not None and column.published is not None:
        published = layout.published.value(layout.published_row(row), column.published)
    both = published is not None and cell["mean"] is not None
    return {**cell, "published": published, "delta": cell["mean"] - published if both else None}


def _cell(records: pd.DataFrame, row: str, column: Column) -> dict:
    runs = records[(records["backbone"] == row) & (records["task"] == column.task)
                   & (records["dataset"] == column.dataset)]
    if column.pretrain_epochs is not None:
        runs = runs[runs["pretrain_epochs"] == column.pretrain_epochs]
    if column.config and not runs.empty:
        runs = runs[runs["config"].map(lambda text: _has_config(json.loads(text), column.config))]
    failed = runs[runs["status"] == "failed"].drop_duplicates("path")
    values = runs[(runs["status"] == "ok") & (runs["metric"] == column.metric)]
    cell = {"row": row, "column": column.label, "task": column.task, "dataset": column.dataset,
            "metric": column.metric, "n": len(values), "mean": None, "std": None, "ci95": None,
            "seeds": _joined(values["seed"]), "reason": ""}
    if not values.empty:
        cell.update(status="ok", **_summary(runs, values, column))
        if not failed.empty:
            cell["reason"] = f"failed, excluded from the mean: {_failures(failed)}"
        return {**cell, **_provenance(values)}
    if not failed.empty:
        return {**cell, "status": "failed", "reason": _failures(failed), **_provenance(failed)}
    if (runs["status"] == "ok").any():
        reason = f"no metric {column.metric} in the {column.task} record(s)"
        return {**cell, "status": "not measured", "reason": reason, **_provenance(runs)}
    reason = f"no {column.task} record for {row} on {column.dataset}"
    return {**cell, "status": "not run", "reason": reason, **_provenance(runs)}


def _has_config(config: dict, wanted: tuple) -> bool:
    return all(config.get(key) == value for key, value in wanted)


def _summary(runs: pd.DataFrame, values: pd.DataFrame, column: Column) -> dict:
    summary = {"mean": float(values["value"].mean()),
               "std": float(values["value"].std(ddof=1)) if len(values) > 1 else None}
    if column.ci_metric is not None:
        cis = runs[(runs["status"] == "ok") & (runs["metric"] == column.ci_metric)
                   & runs["seed"].isin(values["seed"])]["value"]
        summary["ci95"] = float(cis.mean()) if not cis.empty else None
    return summary


def _failures(failed: pd.DataFrame) -> str:
    """``seed 0: CUDA out of memory; seed 1: ...`` for the failed records of one cell."""
    return "; ".join(f"seed {seed}: {error or 'no error given'}"
                     for seed, error in zip(failed["seed"], failed["error"], strict=True))


def _provenance(records: pd.DataFrame) -> dict:
    """What produced a cell, as ``;``-joined unique values, so a CSV line can be traced to its runs."""
    return {key: _joined(records[key]) for key in ("backbone_sha256", "code_version", "config_hash")}


def _joined(values: pd.Series) -> str:
    return ";".join(str(value) for value in sorted(set(values.dropna())))
