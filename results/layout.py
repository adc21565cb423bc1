"""Table layouts: YAML data saying which rows and which task/dataset/metric fills each column.

A layout is a mapping with exactly these keys::

    title: "..."
    rows: [resa, infonce, random, pixels]          # backbone names (record field backbone.name)
    columns:
      - {label: "k-NN top-1 k=20", task: knn, dataset: fashion_mnist, metric: top1_k20}
      - {label: "5-way 1-shot", task: fewshot, dataset: fashion_mnist,
         metric: acc_5way1shot, ci_metric: ci95_5way1shot}   # ci_metric is optional

A paper's table also names its published numbers (:mod:`results.published`); every row of
that file becomes a row of the table, in the paper's order, and each column is compared with
the published column of the same label (or the one its ``published`` key names)::

    title: "ReSA Table 1 ..."
    published: resa_table1.csv
    rows: [{name: resa, published: ReSA}]       # backbone name -> the paper's row label
    columns:
      - {label: "CIFAR-10 linear", task: linear, dataset: cifar10, metric: top1}
      - {label: "1% top-1", task: lowshot, dataset: imagenet, metric: top1,
         protocol: {label_subset: 1percent, epochs: 20}}  # only records of this protocol
      - {label: "100 ep", task: linear, dataset: imagenet, metric: top1,
         pretrain_epochs: 100}                 # only backbones pretrained this many epochs

``protocol`` keys must be protocol keys of the column's task (``downstream.record.PROTOCOL_KEYS``,
the record contract of docs/contracts.md §3): a record whose protocol has other values for them
is not this column's.

Shipped layouts live in ``results/tables/<name>.yaml`` and are named by ``<name>``; any other
YAML file is named by its path. Validation is strict: an unknown or missing key, a wrong type,
a metric outside the documented vocabulary, a protocol key the task does not have, a published
column/row that the file lacks, a non-numeric published column or two rows mapped to one paper
row is a :class:`UserError` naming the file and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from downstream.record import PROTOCOL_KEYS
from resa_core.config import read_yaml
from resa_core.errors import UserError
from results.published import Published, read_published
from results.vocabulary import METRIC_PATTERNS, is_known_metric

SHIPPED_LAYOUTS_DIR = Path(__file__).parent / "tables"
LAYOUT_KEYS = {"title", "rows", "columns"}
OPTIONAL_LAYOUT_KEYS = {"published"}
COLUMN_KEYS = {"label", "task", "dataset", "metric"}
OPTIONAL_COLUMN_KEYS = {"ci_metric", "published", "protocol", "pretrain_epochs"}
ROW_KEYS = {"name", "published"}


@dataclass(frozen=True)
class Column:
    label: str
    task: str
    dataset: str
    metric: str
    ci_metric: str | None = None
    published: str | None = None  # the published column compared with this one
    protocol: tuple[tuple[str, object], ...] = ()  # protocol values a record must have
    pretrain_epochs: int | None = None  # only backbones pretrained this many epochs (record backbone field)
    decimals: int = 2  # digits shown: the published column's own precision, else 2


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    rows: tuple[str, ...]  # backbone names (record field backbone.name)
    columns: tuple[Column, ...]
    published: Published | None = None
    row_labels: tuple[tuple[str, str], ...] = ()  # backbone name -> published row label, where they differ

    def published_row(self, row: str) -> str:
        return dict(self.row_labels).get(row, row)

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
    _check_keys(data, LAYOUT_KEYS, OPTIONAL_LAYOUT_KEYS, f"{path}")
    title = _string(data["title"], f"{path}: 'title'")
    published = read_published(_string(data["published"], f"{path}: 'published'")) if "published" in data else None
    rows = data["rows"]
    if not isinstance(rows, list) or (not rows and published is None):
        raise UserError(f"{path}: 'rows' must be a non-empty list of backbone names")
    named = [_row(entry, f"{path}: rows[{i}]") for i, entry in enumerate(rows)]
    if published is not None:
        named = _with_published_rows(named, published, path)
    _check_unique([name for name, _ in named], f"{path}: 'rows'")
    columns = data["columns"]
    if not isinstance(columns, list) or not columns:
        raise UserError(f"{path}: 'columns' must be a non-empty list of column mappings")
    columns = tuple(_column(entry, f"{path}: columns[{i}]", published) for i, entry in enumerate(columns))
    _check_unique([column.label for column in columns], f"{path}: column labels")
    return Layout(name=path.stem, title=title, rows=tuple(name for name, _ in named), columns=columns,
                  published=published, row_labels=tuple((n, label) for n, label in named if n != label))


def _row(entry: object, where: str) -> tuple[str, str]:
    """``resa`` or ``{name: resa, published: ReSA}`` -> (backbone name, published row label)."""
    if isinstance(entry, dict):
        _check_keys(entry, {"name"}, ROW_KEYS - {"name"}, where)
        name = _string(entry["name"], f"{where}.name")
        return name, _string(entry.get("published", name), f"{where}.published")
    name = _string(entry, where)
    return name, name


def _with_published_rows(named: list[tuple[str, str]], published: Published, path: Path) -> list[tuple[str, str]]:
    """Every published row in the paper's order (under its backbone name where mapped), then our extra rows."""
    by_label = {label: name for name, label in named}
    _check_unique([label for _, label in named], f"{path}: rows mapped to paper rows")
    for name, label in named:
        if label != name and label not in published.table.index:
            raise UserError(f"{path}: row '{name}' maps to '{label}', which {published.name} does not have "
                            f"(rows: {', '.join(published.table.index)})")
    rows = [(by_label.get(label, label), label) for label in published.table.index]
    return rows + [(name, label) for name, label in named if label not in published.table.index]


def _column(entry: object, where: str, published: Published | None) -> Column:
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected a mapping with keys {', '.join(sorted(COLUMN_KEYS))}")
    _check_keys(entry, COLUMN_KEYS, OPTIONAL_COLUMN_KEYS, where)
    fields = {key: _string(value, f"{where}.{key}") for key, value in entry.items()
              if key not in ("protocol", "pretrain_epochs")}
    epochs = entry.get("pretrain_epochs")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0):
        raise UserError(f"{where}.pretrain_epochs: expected a positive integer, got {epochs!r}")
    protocol = entry.get("protocol", {})
    if not isinstance(protocol, dict):
        raise UserError(f"{where}.protocol: expected a mapping of protocol key -> value, got {protocol!r}")
    decimals = 2
    if published is not None:
        fields.setdefault("published", fields["label"])
        if fields["published"] not in published.table.columns:
            raise UserError(f"{where}.published: {published.name} has no column '{fields['published']}' "
                            f"(columns: {', '.join(published.table.columns)})")
        published.check_numeric(fields["published"], f"{where}.published")
        decimals = published.decimals(fields["published"])
    elif "published" in fields:
        raise UserError(f"{where}.published: the layout names no 'published' file")
    column = Column(**fields, protocol=tuple(sorted(protocol.items())), pretrain_epochs=epochs, decimals=decimals)
    if column.task not in METRIC_PATTERNS:
        raise UserError(f"{where}.task: unknown task '{column.task}' (known: {', '.join(METRIC_PATTERNS)})")
    declared = PROTOCOL_KEYS.get(column.task, ())
    for key in protocol:
        if key not in declared:
            raise UserError(f"{where}.protocol: '{key}' is not a protocol key of task {column.task} "
                            f"(its keys: {', '.join(declared) or 'none, the task name is its protocol'})")
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
