"""Published numbers: one CSV file per paper table under ``results/published/``, transcribed by hand.

Format (read with pandas)::

    # <Paper> Table <N>: <caption> | source: shared/papers/<paper>.md
    method,<column>,<column>,...
    SimCLR,90.74,85.13,...

The first line is the header row with the caption and the source; then a CSV table whose first
column is the row label (unique; the method as the paper names it, without the citation) and
whose other columns are the paper's columns; a cell the paper leaves out ('-') is empty. Tables
the paper prints transposed say so in their caption.

Files are read from this package only (``results/published/``), by file name: a file of the
same name in the working directory is never picked up. Each cell keeps the text it was
transcribed as, so a table shows the paper's own precision (48.3 stays 48.3, not 48.30); a
column compared with our numbers must be numeric, or the layout is refused in one line.
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
    table: pd.DataFrame  # index: row labels; columns: the paper's columns; cells as transcribed (str, "" empty)

    def value(self, row: str, column: str) -> float | None:
        """The published number, or None where the paper gives none (or the row is not in the paper)."""
        text = self.text(row, column)
        return float(text) if text else None

    def text(self, row: str, column: str) -> str:
        """The cell as the paper prints it ("" where it gives none or the row is not in the paper)."""
        return str(self.table.at[row, column]) if row in self.table.index else ""

    def decimals(self, column: str) -> int:
        """The paper's precision for ``column``: the most digits after the point among its cells."""
        return max((len(text.split(".", 1)[1]) if "." in text else 0 for text in self.table[column] if text),
                   default=2)

    def check_numeric(self, column: str, where: str) -> None:
        """A column compared with our numbers must hold numbers (or nothing) in every row."""
        for row, text in self.table[column].items():
            if text and not _is_number(text):
                raise UserError(f"{where}: published column '{column}' of {self.name} is not numeric "
                                f"(row '{row}' holds {text!r})")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def resolve_published_path(name: str) -> Path:
    """``resa_table1.csv`` -> ``results/published/resa_table1.csv``; never a file of the working directory."""
    shipped = PUBLISHED_DIR / name
    if Path(name).name != name or not shipped.is_file():
        known = ", ".join(sorted(p.name for p in PUBLISHED_DIR.glob("*.csv")))
        raise UserError(f"published table '{name}' is not a file of {PUBLISHED_DIR} (shipped: {known})")
    return shipped


def read_published(name: str) -> Published:
    """Read and check one shipped published-numbers file (header row, unique row labels)."""
    path = resolve_published_path(name)
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n")
    if not header.startswith("# ") or SOURCE_SEPARATOR not in header:
        raise UserError(f"{path}: the first line must be '# <caption>{SOURCE_SEPARATOR}<source>'")
    caption, source = header[2:].split(SOURCE_SEPARATOR, 1)
    try:
        table = pd.read_csv(path, skiprows=1, index_col=0, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as err:
        raise UserError(f"{path}: not a valid CSV table ({err})") from None
    if table.index.has_duplicates:
        raise UserError(f"{path}: row label '{table.index[table.index.duplicated()][0]}' appears twice")
    return Published(name=path.stem, caption=caption, source=source, table=table)
