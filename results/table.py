"""Build one layout's table from a run: records -> cells -> Markdown + CSV + LaTeX (+ k-NN plot), written atomically.

The CSV is the tidy cell list of :mod:`results.aggregate` (one line per row x column with n,
mean, std, ci95, status, reason and the provenance: backbone sha256, code version, config
hash) and, for a paper's table, the published number and the difference, so every number in the
Markdown and LaTeX can be traced back to the records that made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from resa_core.atomic import write_text_atomic
from results.aggregate import aggregate_cells
from results.knn_plot import knn_top1_points, plot_knn_top1_vs_k
from results.latex import render_latex
from results.layout import load_layout
from results.markdown import render_markdown
from results.records import load_records

KNN_PLOT_NAME = "knn_top1_vs_k.png"


@dataclass(frozen=True)
class TableOutput:
    markdown: str
    written: list[Path]


def build_table(run_dir: str | Path, layout_name: str, out_dir: str | Path | None = None) -> TableOutput:
    """Render ``layout_name`` for the records of ``run_dir`` into ``out_dir`` (default ``<run>/tables``)."""
    layout = load_layout(layout_name)
    records = load_records(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "tables"
    on_datasets = records[records["dataset"].isin(layout.datasets)]
    shown = on_datasets[on_datasets["backbone"].isin(layout.rows)]
    unshown = sorted(set(on_datasets["backbone"]) - set(layout.rows))
    cells = aggregate_cells(shown, layout)
    markdown = render_markdown(cells, layout, unshown)
    written = [
        write_text_atomic(out_dir / f"{layout.name}.md", markdown),
        write_text_atomic(out_dir / f"{layout.name}.csv", cells.to_csv(index=False)),
        write_text_atomic(out_dir / f"{layout.name}.tex", render_latex(cells, layout, unshown)),
    ]
    if not knn_top1_points(shown).empty:
        written.append(plot_knn_top1_vs_k(shown, out_dir / KNN_PLOT_NAME, backbone_order=layout.rows))
    return TableOutput(markdown=markdown, written=written)

