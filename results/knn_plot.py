"""Plot k-NN top-1 accuracy against k: one line per backbone, one panel per dataset.

Points are the mean over ok seeds with the sample std (ddof=1) as error bars: the tables' own
``groupby().agg(**summary(...))`` (:mod:`results.aggregate`), keyed by protocol too, so runs of
two k-NN protocols (weighted vs majority, two label subsets) are two lines, never one average; the legend
adds the protocol's short hash where a backbone has several on one dataset. Drawn on a bare
:class:`matplotlib.figure.Figure` (Agg canvas, no pyplot state), so it works headless and never
opens a window; the PNG is written atomically.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from resa_core.atomic import write_atomic
from resa_core.errors import UserError
from results.aggregate import summary

TOP1_METRIC = re.compile(r"^top1_k([1-9][0-9]*)$")


def knn_top1_points(records: pd.DataFrame) -> pd.DataFrame:
    """Ok k-NN top-1 values with their k: columns dataset, backbone, protocol_sha256, seed, k, value."""
    knn = records[(records["task"] == "knn") & (records["status"] == "ok")]
    k = knn["metric"].str.extract(TOP1_METRIC, expand=False)
    points = knn[k.notna()].assign(k=k[k.notna()].astype(int))
    return points[["dataset", "backbone", "protocol_sha256", "seed", "k", "value"]]


def knn_lines(records: pd.DataFrame) -> pd.DataFrame:
    """One row per plotted point: dataset, backbone, protocol_sha256, k, n, mean, std and its ``line`` label."""
    points = knn_top1_points(records)
    if points.empty:
        raise UserError("no ok knn records with top1_k<k> metrics to plot")
    stats = points.groupby(["dataset", "backbone", "protocol_sha256", "k"]).agg(**summary("value")).reset_index()
    several = stats.groupby(["dataset", "backbone"])["protocol_sha256"].transform("nunique") > 1
    stats["line"] = stats["backbone"].where(~several, stats["backbone"] + " (protocol "
                                            + stats["protocol_sha256"].str[:8] + ")")
    return stats


def plot_knn_top1_vs_k(records: pd.DataFrame, out_path: str | Path,
                       backbone_order: Sequence[str] = ()) -> Path:
    """Write the plot to ``out_path``; backbones in ``backbone_order`` come first in the legend."""
    stats = knn_lines(records)
    datasets = sorted(stats["dataset"].unique())
    figure = Figure(figsize=(5 * len(datasets), 4), layout="constrained")
    for axes, dataset in zip(figure.subplots(1, len(datasets), squeeze=False)[0], datasets, strict=True):
        _draw_dataset(axes, stats[stats["dataset"] == dataset], dataset, backbone_order)
    return write_atomic(out_path, lambda handle: figure.savefig(handle, format="png", dpi=120))


def _draw_dataset(axes, stats: pd.DataFrame, dataset: str, backbone_order: Sequence[str]) -> None:
    order = {name: position for position, name in enumerate(backbone_order)}
    lines = stats[["backbone", "line"]].drop_duplicates().itertuples(index=False)
    for _, name in sorted(lines, key=lambda line: (order.get(line.backbone, len(order)), line.line)):
        points = stats[stats["line"] == name].sort_values("k")
        axes.errorbar(points["k"], points["mean"], yerr=points["std"].fillna(0.0), marker="o", capsize=3,
                      label=name)
    ks = sorted(stats["k"].unique())
    axes.set_xscale("log")
    axes.set_xticks(ks)
    axes.xaxis.set_major_formatter(ScalarFormatter())
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("k (nearest neighbours)")
    axes.set_ylabel("k-NN top-1 accuracy (%)")
    axes.set_title(f"k-NN top-1 vs k on {dataset}\n(mean ± std over seeds)")
    axes.grid(True, alpha=0.3)
    axes.legend(title="backbone")
