"""Render aggregated cells (:mod:`results.aggregate`) as a Markdown table that says what it measured.

Above the table: the title and a caption with the dataset(s), the seeds, the code version(s)
and how cells were summarised. Below it: numbered footnotes giving the reason of every "–"
cell (not run / failed with its error / not measured) and of failed seeds left out of a mean.
"""

from __future__ import annotations

import pandas as pd

from results.layout import Layout

MISSING = "–"
SUMMARY_NOTE = (
    "Cells: mean ± std over seeds (sample std, ddof=1; a single value when n=1); few-shot cells: "
    "accuracy ± 95% CI over episodes (the run's CI when n=1, the mean of per-seed CIs when n>1). "
    "Accuracies in %; failed runs never enter a mean."
)


def render_markdown(cells: pd.DataFrame, layout: Layout, unshown_backbones: list[str]) -> str:
    """The whole Markdown document for one layout: title, caption, table, footnotes."""
    footnotes: list[str] = []
    full_n = int(cells["n"].max())
    header = ["backbone", *(column.label for column in layout.columns)]
    lines = [f"## {layout.title}", "", _caption(cells, layout, unshown_backbones), "",
             _table_line(header), _table_line(["---", *["---:"] * len(layout.columns)])]
    for row in layout.rows:
        row_cells = cells[cells["row"] == row]
        texts = [_cell_text(cell, full_n, footnotes) for cell in row_cells.itertuples(index=False)]
        lines.append(_table_line([row, *texts]))
    if footnotes:
        lines.append("")
        lines.extend(f"[{number}] {note}" for number, note in enumerate(footnotes, start=1))
    return "\n".join(lines) + "\n"


def _caption(cells: pd.DataFrame, layout: Layout, unshown_backbones: list[str]) -> str:
    measured = cells[cells["status"] == "ok"]
    seeds = _split_unique(measured["seeds"], key=int)
    versions = _split_unique(cells["code_version"])
    parts = [
        f"Dataset: {', '.join(layout.datasets)}",
        f"seeds: {', '.join(seeds) or 'none'} ({len(seeds)})",
        f"code version: {', '.join(versions) or 'none'}",
    ]
    caption = " · ".join(parts) + ". " + SUMMARY_NOTE
    if unshown_backbones:
        caption += f" Records of backbones not in this layout (not shown): {', '.join(unshown_backbones)}."
    return caption


def _cell_text(cell, full_n: int, footnotes: list[str]) -> str:
    if cell.status != "ok":
        return f"{MISSING} {_footnote(f'{cell.status}: {cell.reason}', footnotes)}"
    spread = cell.ci95 if pd.notna(cell.ci95) else cell.std
    text = f"{cell.mean:.2f}" + (f" ± {spread:.2f}" if pd.notna(spread) else "")
    if cell.n < full_n:
        text += f" (n={cell.n})"
    if cell.reason:
        text += f" {_footnote(cell.reason, footnotes)}"
    return text


def _footnote(note: str, footnotes: list[str]) -> str:
    """``[k]`` for ``note``, reusing the number of an identical earlier note."""
    if note not in footnotes:
        footnotes.append(note)
    return f"[{footnotes.index(note) + 1}]"


def _split_unique(joined: pd.Series, key=str) -> list[str]:
    values = {value for text in joined if text for value in text.split(";")}
    return sorted(values, key=key)


def _table_line(cells: list[str]) -> str:
    return "| " + " | ".join(text.replace("|", "\\|") for text in cells) + " |"
