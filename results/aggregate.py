"""Reduce the records to one cell per (layout row, layout column): mean, std and n over seeds.

How: every record that could fill a column (its backbone is a layout row, its task and dataset
the column's) becomes a candidate of that column, flagged by whether it passes the column's
protocol keys and ``pretrain_epochs``; then one ``groupby(["row", "column"]).agg(...)`` reduces
the candidates and the result is reindexed onto the layout's rows x columns, so every cell is
present whatever the records hold (values of records that do not count for a cell are masked
to NaN before the one ``agg``). :func:`summary` (n, mean, sample std) is shared with the k-NN
plot (:mod:`results.knn_plot`).

Choices, stated once here and in every rendered table:

- ``std`` is the sample standard deviation over seeds (``ddof=1``); with one seed it is empty.
- A column with a ``ci_metric`` (few-shot) carries ``ci95``: the run's own 95% CI over episodes
  when n == 1, the mean of the per-seed CIs when n > 1 (a typical width, not a pooled CI).
- Only ``ok`` records contribute. A cell is ``failed`` when its only records failed (their
  errors are the reason), ``not run`` when there is no record for the row/task/dataset at all,
  ``filtered out`` when such records exist but none has the column's protocol values or
  pretraining length (the reason names the key), ``not measured`` when ok records exist but none
  holds the metric, and ``ambiguous`` when the records left hold two protocols or two records of
  one seed (two backbones of one name): they are never averaged. Seeds that failed beside ok
  seeds are excluded from the mean and named in the reason.
- ``reason`` is the cell's own explanation (CSV); ``note`` is the same reason without the cell's
  row and dataset, so identical reasons share one footnote in the rendered tables.
- Where the layout names published numbers, each cell carries ``published`` (the paper's number,
  empty where the paper has none) and ``delta`` = mean - published, both rounded to the paper's
  precision for that column (empty unless both exist).
"""

from __future__ import annotations

import json

import pandas as pd

from results.layout import Column, Layout

CELL_COLUMNS = [
    "row", "column", "task", "dataset", "metric", "status", "n", "mean", "std", "ci95", "seeds",
    "reason", "note", "published", "delta", "protocol_sha256", "backbone_sha256", "code_version", "config_hash",
]
KEY = ["row", "column"]


def summary(column: str) -> dict:
    """Named aggregations n, mean and sample std (ddof=1) of ``column`` (NaN: not counted), for ``agg(**...)``."""
    return {"n": (column, "count"), "mean": (column, "mean"), "std": (column, lambda v: v.std(ddof=1))}

_PROVENANCE = ("protocol_sha256", "backbone_sha256", "code_version", "config_hash")


def aggregate_cells(records: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """One row per layout cell, in row-major layout order, with columns :data:`CELL_COLUMNS`."""
    candidates = _candidates(records, layout)
    grouped = candidates.groupby(KEY).agg(
        **summary("value_sel"), ci95=("ci_sel", "mean"), seeds=("seed_sel", _joined),
        duplicate_seeds=("seed_sel", lambda s: bool(s.dropna().duplicated().any())),
        protocols=("protocol_sel", _unique_list), epochs=("epochs_sel", "nunique"),
        candidates=("path", "nunique"), ok_selected=("ok_selected", "any"),
        failures=("failure", _joined_by_seed), mismatched=("mismatched", _joined_keys),
        **{f"{kind}_{key}": (f"{kind}_{key}", _joined) for kind in ("value", "selected") for key in _PROVENANCE})
    index = pd.MultiIndex.from_product([list(layout.rows), [column.label for column in layout.columns]], names=KEY)
    table = grouped.reindex(index).reset_index()
    columns = {column.label: column for column in layout.columns}
    cells = [_cell(cell, columns[cell["column"]], layout) for cell in table.to_dict("records")]
    return pd.DataFrame(cells, columns=CELL_COLUMNS)


def _candidates(records: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """Every record row that could fill a column, once per column, with its selection flags."""
    protocols = records["protocol"].map(json.loads)
    frames = []
    for column in layout.columns:
        mine = (records["backbone"].isin(layout.rows) & (records["task"] == column.task)
                & (records["dataset"] == column.dataset))
        frame = records[mine].copy()
        frame["row"], frame["column"] = frame["backbone"], column.label
        wanted = dict(column.protocol)
        frame["mismatched"] = protocols[mine].map(
            lambda protocol, wanted=wanted: ",".join(k for k, v in wanted.items() if protocol.get(k, ...) != v))
        epochs_ok = (frame["pretrain_epochs"] == column.pretrain_epochs if column.pretrain_epochs is not None
                     else pd.Series(True, index=frame.index))
        frame.loc[~epochs_ok, "mismatched"] = "pretrain_epochs"
        frame["selected"] = frame["mismatched"] == ""
        ok = frame["selected"] & (frame["status"] == "ok")
        frame["ok_selected"] = ok
        is_value = ok & (frame["metric"] == column.metric)
        is_ci = ok & (frame["metric"] == column.ci_metric) if column.ci_metric else ok & False
        frame["value_sel"], frame["ci_sel"] = frame["value"].where(is_value), frame["value"].where(is_ci)
        frame["seed_sel"] = frame["seed"].astype("Int64").where(is_value)
        frame["protocol_sel"] = frame["protocol"].where(is_value)
        frame["epochs_sel"] = frame["pretrain_epochs"].astype(str).where(is_value)
        failed = frame["selected"] & (frame["status"] == "failed")
        frame["failure"] = ("seed " + frame["seed"].astype(str) + ": "
                            + frame["error"].fillna("no error given").astype(str)).where(failed)
        for key in _PROVENANCE:
            frame[f"selected_{key}"] = frame[key].where(frame["selected"])
            frame[f"value_{key}"] = frame[key].where(is_value)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _cell(cell: dict, column: Column, layout: Layout) -> dict:
    base = {"row": cell["row"], "column": column.label, "task": column.task, "dataset": column.dataset,
            "metric": column.metric, "n": 0, "mean": None, "std": None, "ci95": None, "seeds": ""}
    n = 0 if pd.isna(cell["n"]) else int(cell["n"])
    failures = cell["failures"] if isinstance(cell["failures"], str) else ""
    if n and (cell["duplicate_seeds"] or len(cell["protocols"]) > 1 or cell["epochs"] > 1):
        differ = _differing(cell)
        note = (f"ambiguous: the matching records differ in {differ} and are not averaged; "
                "select one with the column's protocol or pretrain_epochs")
        result = {**base, "status": "ambiguous", "reason": note, "note": note}
    elif n:
        note = f"failed, excluded from the mean: {failures}" if failures else ""
        result = {**base, "status": "ok", "n": n, "mean": float(cell["mean"]),
                  "std": None if pd.isna(cell["std"]) else float(cell["std"]),
                  "ci95": None if pd.isna(cell["ci95"]) or column.ci_metric is None else float(cell["ci95"]),
                  "seeds": cell["seeds"], "reason": note, "note": note}
    elif failures:
        result = {**base, "status": "failed", "reason": failures, "note": f"failed: {failures}"}
    elif _true(cell["ok_selected"]):
        result = {**base, "status": "not measured", "reason": f"no metric {column.metric} in the {column.task} "
                  "record(s)", "note": "not measured: the records lack the column's metric"}
    elif not pd.isna(cell["candidates"]):
        keys = cell["mismatched"]
        result = {**base, "status": "filtered out",
                  "reason": f"{int(cell['candidates'])} {column.task} record(s) of {cell['row']} on "
                            f"{column.dataset}, none with the column's {_wanted(column, keys)}",
                  "note": f"filtered out: records exist, none with the column's {keys}"}
    else:
        result = {**base, "status": "not run", "reason": f"no {column.task} record for {cell['row']} on "
                  f"{column.dataset}", "note": "not run: no record"}
    provenance = "value" if n else "selected"
    result.update({key: cell[f"{provenance}_{key}"] if isinstance(cell[f"{provenance}_{key}"], str) else ""
                   for key in _PROVENANCE})
    return _compared(result, layout, column)


def _compared(cell: dict, layout: Layout, column: Column) -> dict:
    published = None
    if layout.published is not None and column.published is not None:
        published = layout.published.value(layout.published_row(cell["row"]), column.published)
    delta = None
    if published is not None and cell["mean"] is not None:
        delta = round(round(cell["mean"], column.decimals) - published, column.decimals) + 0.0  # no -0.0
    return {**cell, "published": published, "delta": delta}


def _wanted(column: Column, keys: str) -> str:
    values = dict(column.protocol, pretrain_epochs=column.pretrain_epochs)
    return ", ".join(f"{key} = {json.dumps(values.get(key))}" for key in keys.split(","))


def _differing(cell: dict) -> str:
    """What tells apart the records of an ambiguous cell: protocol keys, pretraining length, or backbones."""
    protocols = [json.loads(text) for text in cell["protocols"]]
    keys = sorted({key for p in protocols for key in p if len({json.dumps(q.get(key)) for q in protocols}) > 1})
    if cell["epochs"] > 1:
        keys.append("pretrain_epochs")
    return ", ".join(keys) or "backbone (two records of one seed)"


def _true(value) -> bool:
    """A flag of the reindexed table: NaN (no candidates) counts as false."""
    return not pd.isna(value) and bool(value)


def _unique_list(values: pd.Series) -> list:
    return sorted(set(values.dropna()))


def _joined(values: pd.Series) -> str:
    return ";".join(str(value) for value in sorted(set(values.dropna())))


def _joined_by_seed(values: pd.Series) -> str:
    """``seed 0: CUDA out of memory; seed 1: ...`` (one entry per failed record, in seed order)."""
    return "; ".join(sorted(set(values.dropna()), key=lambda text: int(text.split(":")[0].split()[1])))


def _joined_keys(values: pd.Series) -> str:
    """The keys that filtered out every candidate (those of the candidate that failed on fewest)."""
    keys = [text for text in values if text]
    return min(keys, key=lambda text: (text.count(","), text)) if len(keys) == len(values) else ""
