"""Render aggregated cells (:mod:`results.aggregate`) as a Markdown table that says what it measured.

Above the table: the title and a caption with the dataset(s), the seeds, the code version(s)
and how cells were summarised. Below it: numbered footnotes giving the reason of every "–"
cell (not run / filtered out / failed with its error / not measured / ambiguous) and of failed
seeds left out of a mean, one footnote per distinct reason (the cell's ``note``; the CSV keeps
each cell's own ``reason``). A column compared with a paper is followed by the published number
("paper", as the paper prints it) and the difference ("Δ" = ours - paper); our numbers and Δ are
shown with the paper's precision for that column (two decimals where there is no paper). Rows
are labelled by the paper's name, with our backbone name in brackets where it differs.
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
    header, rows, footnotes = table_texts(cells, layout)
    lines = [f"## {layout.title}", "", caption(cells, layout, unshown_backbones), "",
             _table_line(header), _table_line(["---", *["---:"] * (len(header) - 1)])]
    lines += [_table_line(row) for row in rows]
    if footnotes:
        lines.append("")
        lines.extend(f"[{number}] {note}" for number, note in enumerate(footnotes, start=1))
    return "\n".join(lines) + "\n"


def table_texts(cells: pd.DataFrame, layout: Layout) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, body rows (label first) and numbered footnotes as plain text, for any output format."""
    footnotes: list[str] = []
    full_n = int(cells["n"].max())
    header = ["backbone"]
    for column in layout.columns:
        header += [column.label, "paper", "Δ"] if column.published else [column.label]
    rows = []
    for row in layout.rows:
        row_cells = cells[cells["row"] == row]
        texts: list[str] = []
        for column, cell in zip(layout.columns, row_cells.itertuples(index=False), strict=True):
            texts.append(_cell_text(cell, column.decimals, full_n, footnotes))
            if column.published:
                texts += _comparison_texts(layout, row, column, cell, footnotes)
        rows.append([row_label(layout, row), *texts])
    return header, rows, footnotes


def row_label(layout: Layout, row: str) -> str:
    """The paper's row label, with our backbone name in brackets where the two differ."""
    label = layout.published_row(row)
    return label if label == row else f"{label} [{row}]"


def _comparison_texts(layout: Layout, row: str, column, cell, footnotes: list[str]) -> list[str]:
    if pd.isna(cell.published):
        return [f"{MISSING} {_footnote('not reported in the paper', footnotes)}", MISSING]
    delta = f"{cell.delta:+.{column.decimals}f}" if pd.notna(cell.delta) else MISSING
    return [layout.published.text(layout.published_row(row), column.published), delta]


def caption(cells: pd.DataFrame, layout: Layout, unshown_backbones: list[str]) -> str:
    measured = cells[cells["status"] == "ok"]
    seeds = _split_unique(measured["seeds"], key=int)
    versions = _split_unique(cells["code_version"])
    parts = [
        f"Dataset: {', '.join(layout.datasets)}",
        f"seeds: {', '.join(seeds) or 'none'} ({len(seeds)})",
        f"code version: {', '.join(versions) or 'none'}",
    ]
    caption = " · ".join(parts) + ". " + SUMMARY_NOTE
    if layout.published is not None:
        caption += (f" Published numbers: {layout.published.caption} ({layout.published.source}); "
                    "Δ = ours - paper.")
    if unshown_backbones:
        caption += f" Records of backbones not in this layout (not shown): {', '.join(unshown_backbones)}."
    return caption


def _cell_text(cell, decimals: int, full_n: int, footnotes: list[str]) -> str:
    if cell.status != "ok":
        return f"{MISSING} {_footnote(cell.note, footnotes)}"
    spread = cell.ci95 if pd.notna(cell.ci95) else cell.std
    text = f"{cell.mean:.{decimals}f}" + (f" ± {spread:.{decimals}f}" if pd.notna(spread) else "")
    if cell.n < full_n:
        text += f" (n={cell.n})"
    if cell.note:
        text += f" {_footnote(cell.note, footnotes)}"
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
