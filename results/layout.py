"""Table layouts: YAML data saying which rows and which task/dataset/metric fills each column.

A layout is a mapping with exactly these keys::

    title: "..."
    rows: [resa, infonce, random, pixels]          # backbone names (record field backbone.name)
    columns:
      - {label: "k-NN top-1 k=20", task: knn, dataset: fashion_mnist, metric: top1_k20}
      - {label: "5-way 1-shot", task: fewshot, dataset: fashion_mnist,
         metric: acc_5way1shot, ci_metric: ci95_5way1shot}   # ci_metric is optional

Shipped layouts live in ``results/tables/<name>.yaml`` and are named by ``<name>``; any other
YAML file is named by its path. Validation is strict: an unknown or missing key, a wrong type
or a metric outside the documented vocabulary is a :class:`UserError` naming the file and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from resa_core.config import read_yaml
from resa_core.errors import UserError
from results.vocabulary import METRIC_PATTERNS, is_known_metric

SHIPPED_LAYOUTS_DIR = Path(__file__).parent / "tables"
LAYOUT_KEYS = {"title", "rows", "columns"}
COLUMN_KEYS = {"label", "task", "dataset", "metric"}
OPTIONAL_COLUMN_KEYS = {"ci_metric"}


@dataclass(frozen=True)
class Column:
    label: str
    task: str
    dataset: str
    metric: str
    ci_metric: str | None = None


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    rows: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def datasets(self) -> list[str]:
        """Datasets the columns draw on, in column order."""
        return list(dict.fromkeys(column.dataset for column in self.columns))


def resolve_layout_path(name_or_path: str) -> Path:
    """``demo`` -> the shipped ``results/tables/demo.yaml``; anything ending in .yaml/.yml is a path."""
    if name_or_path.endswith((".yaml", ".yml")):
        return Path(name_or_path)
    path = SHIPPED_LAYOUTS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SHIPPED_LAYOUTS_DIR.glob("*.yaml"))) or "none"
        raise UserError(f"unknown layout '{name_or_path}' (shipped layouts: {known}; or give a .yaml path)")
    return path


def load_layout(name_or_path: str) -> Layout:
    """Read and strictly validate a layout, by shipped name or by path."""
    path = resolve_layout_path(name_or_path)
    data = read_yaml(path)
    _check_keys(data, LAYOUT_KEYS, set(), f"{path}")
    title = _string(data["title"], f"{path}: 'title'")
    rows = data["rows"]
    if not isinstance(rows, list) or not rows:
        raise UserError(f"{path}: 'rows' must be a non-empty list of backbone names")
    rows = tuple(_string(row, f"{path}: rows[{i}]") for i, row in enumerate(rows))
    _check_unique(rows, f"{path}: 'rows'")
    columns = data["columns"]
    if not isinstance(columns, list) or not columns:
        raise UserError(f"{path}: 'columns' must be a non-empty list of column mappings")
    columns = tuple(_column(entry, f"{path}: columns[{i}]") for i, entry in enumerate(columns))
    _check_unique([column.label for column in columns], f"{path}: column labels")
    return Layout(name=path.stem, title=title, rows=rows, columns=columns)


def _column(entry: object, where: str) -> Column:
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected a mapping with keys {', '.join(sorted(COLUMN_KEYS))}")
    _check_keys(entry, COLUMN_KEYS, OPTIONAL_COLUMN_KEYS, where)
    fields = {key: _string(value, f"{where}.{key}") for key, value in entry.items()}
    column = Column(**fields)
    if column.task not in METRIC_PATTERNS:
        raise UserError(f"{where}.task: unknown task '{column.task}' (known: {', '.join(METRIC_PATTERNS)})")
    for key in ("metric", "ci_metric"):
        metric = getattr(column, key)
        if metric is not None and not is_known_metric(column.task, metric):
            raise UserError(
                f"{where}.{key}: '{metric}' is not a {column.task} metric of docs/contracts.md §3 "
                f"(pattern {METRIC_PATTERNS[column.task].pattern})"
            )
    return column


def _check_keys(data: dict, required: set[str], optional: set[str], where: str) -> None:
    unknown = sorted(set(map(str, data)) - required - optional)
    if unknown:
        allowed = ", ".join(sorted(required | optional))
        raise UserError(f"{where}: unknown layout key '{unknown[0]}' (allowed: {allowed})")
    missing = sorted(required - set(data))
    if missing:
        raise UserError(f"{where}: missing layout key '{missing[0]}'")


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise UserError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _check_unique(values, where: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise UserError(f"{where}: '{value}' appears twice")
        seen.add(value)
