"""Training curves from pretraining logs (``metrics.jsonl``, docs/contracts.md §5), as one PNG.

One panel per quantity, one line per run (and per representation for the clustering metrics,
as in the ReSA paper's Figures 4 and 9): ``loss`` against the optimisation step; against the
epoch, the online ``knn_top1`` and each clustering metric logged as ``<representation>/<metric>``
(``sc_mean``, ``sc_std``, ``ari``, ...). A line that is not JSON, or lacks ``epoch``/``step``,
is a :class:`UserError` naming the file and line. Drawn on a bare Figure, written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from resa_core.atomic import write_atomic
from resa_core.errors import UserError

STEP_PANELS = ("loss",)
EPOCH_PANELS = ("knn_top1",)


def read_metrics(path: str | Path) -> pd.DataFrame:
    """All lines of one ``metrics.jsonl`` as a DataFrame (NaN where a line lacks a key)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"metrics log not found: {path}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: not a JSON object ({err})") from None
        if not isinstance(row, dict) or "epoch" not in row or "step" not in row:
            raise UserError(f"{path}:{number}: expected a JSON object with 'epoch' and 'step'")
        rows.append(row)
    if not rows:
        raise UserError(f"{path}: no logged lines")
    return pd.DataFrame(rows)


def _panels(frames: dict[str, pd.DataFrame]) -> list[tuple[str, str]]:
    """(quantity, x axis) of every panel that some run logged, in a fixed order."""
    columns = set().union(*(frame.columns for frame in frames.values()))
    panels = [(name, "step") for name in STEP_PANELS if name in columns]
    panels += [(name, "epoch") for name in EPOCH_PANELS if name in columns]
    clustering = sorted({column.split("/", 1)[1] for column in columns if "/" in column})
    return panels + [(name, "epoch") for name in clustering]


def plot_training_curves(logs: Sequence[str | Path], out_path: str | Path) -> Path:
    """Plot the runs of ``logs`` (label: the log's directory name) into ``out_path``."""
    frames = {Path(log).parent.name or str(log): read_metrics(log) for log in logs}
    panels = _panels(frames)
    if not panels:
        raise UserError("the metrics logs hold no loss, knn_top1 or <representation>/<metric> values to plot")
    figure = Figure(figsize=(4.5 * len(panels), 3.8), layout="constrained")
    for axes, (quantity, x_axis) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        for label, frame in frames.items():
            keys = [quantity] if quantity in frame.columns else [c for c in frame.columns
                                                                 if c.endswith("/" + quantity)]
            for key in keys:
                points = frame[[x_axis, key]].dropna()
                if not points.empty:
                    name = label if key == quantity else f"{label}: {key.split('/', 1)[0]}"
                    axes.plot(points[x_axis], points[key], marker="o" if x_axis == "epoch" else None, label=name)
        axes.set_xlabel(x_axis)
        axes.set_title(quantity)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    return write_atomic(out_path, lambda handle: figure.savefig(handle, format="png", dpi=110))
