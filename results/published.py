"""Published numbers: one CSV file per paper table under ``results/published/``, transcribed by hand.

Format (read with pandas)::

    # <Paper> Table <N>: <caption> | source: shared/papers/<paper>.md
    method,<column>,<column>,...
    SimCLR,90.74,85.13,...

The first line is the header row with the caption and the source; then a CSV table whose first
column is the row label (unique; the method as the paper names it, without the citation) and
whose other columns are the paper's columns; a cell the paper leaves out ('-') is empty. Tables
the paper prints transposed say so in their caption.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from resa_core.errors import UserError

PUBLISHED_DIR = Path(__file__).parent / "published"
SOURCE_SEPARATOR = " | source: "


@dataclass(frozen=True)
class Published:
    name: str
    caption: str
    source: str
    table: pd.DataFrame  # index: row labels; columns: the paper's columns

    def value(self, row: str, column: str) -> float | None:
        """The published number, or None where the paper gives none (or the row is not in the paper)."""
        if row not in self.table.index:
            return None
        value = self.table.at[row, column]
        return None if pd.isna(value) else float(value)


def resolve_published_path(name_or_path: str) -> Path:
    """``resa_table1.csv`` -> the shipped file; a path that exists is taken as it is."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = PUBLISHED_DIR / name_or_path
    if not shipped.is_file():
        raise UserError(f"published table '{name_or_path}' not found (shipped: {PUBLISHED_DIR})")
    return shipped


def read_published(name_or_path: str) -> Published:
    """Read and check one published-numbers file (header row, unique row labels)."""
    path = resolve_published_path(name_or_path)
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n")
    if not header.startswith("# ") or SOURCE_SEPARATOR not in header:
        raise UserError(f"{path}: the first line must be '# <caption>{SOURCE_SEPARATOR}<source>'")
    caption, source = header[2:].split(SOURCE_SEPARATOR, 1)
    try:
        table = pd.read_csv(path, skiprows=1, index_col=0, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, ValueError) as err:
        raise UserError(f"{path}: not a valid CSV table ({err})") from None
    if table.index.has_duplicates:
        raise UserError(f"{path}: row label '{table.index[table.index.duplicated()][0]}' appears twice")
    return Published(name=path.stem, caption=caption, source=source, table=table)
