"""Command line of the results stage.

    python -m results table --run-dir RUN [--layout demo|PATH.yaml] [--out DIR]
    python -m results plot-knn --run-dir RUN [--out FILE.png]
    python -m results plot-curves METRICS.jsonl [METRICS.jsonl ...] --out FILE.png
    python -m results migrate RUN

``table`` prints the Markdown table and writes ``<out>/<layout>.md``, ``<out>/<layout>.csv``,
``<out>/<layout>.tex`` and, when k-NN records exist, ``<out>/knn_top1_vs_k.png`` (``--out`` defaults to
``<run>/tables``). ``plot-knn`` writes only the plot (default ``<run>/tables/knn_top1_vs_k.png``).
``plot-curves`` plots pretraining logs: loss, online k-NN and clustering metrics over training.
``migrate`` moves a run's format-1 records (no protocol level) to the format-2 layout (:mod:`results.migrate`).
Bad input ends with one ``error: ...`` line and exit status 2 (see :func:`resa_core.errors.run_cli`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from results.curves import plot_training_curves
from results.knn_plot import plot_knn_top1_vs_k
from results.migrate import migrate_run
from results.records import load_records
from results.table import KNN_PLOT_NAME, build_table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m results", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    table = commands.add_parser("table", help="render a table layout from a run's result records")
    table.add_argument("--run-dir", required=True, type=Path, help="run directory holding records/")
    table.add_argument("--layout", default="demo", help="shipped layout name or a layout .yaml path")
    table.add_argument("--out", type=Path, help="output directory (default: RUN/tables)")
    plot = commands.add_parser("plot-knn", help="plot k-NN top-1 accuracy against k")
    plot.add_argument("--run-dir", required=True, type=Path, help="run directory holding records/")
    plot.add_argument("--out", type=Path, help=f"output PNG (default: RUN/tables/{KNN_PLOT_NAME})")
    curves = commands.add_parser("plot-curves", help="plot training curves from pretraining metrics.jsonl files")
    curves.add_argument("logs", nargs="+", type=Path, help="metrics.jsonl files (label: their directory name)")
    curves.add_argument("--out", type=Path, required=True, help="output PNG")
    migrate = commands.add_parser("migrate", help="move format-1 records to the protocol-level layout (format 2)")
    migrate.add_argument("run_dir", type=Path, help="run directory holding records/")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "table":
        output = build_table(args.run_dir, args.layout, args.out)
        print(output.markdown, end="")
        for path in output.written:
            print(f"wrote {path}", file=sys.stderr)
    elif args.command == "migrate":
        moved = migrate_run(args.run_dir)
        print(f"migrated {len(moved)} format-1 record(s) under {args.run_dir / 'records'}", file=sys.stderr)
    elif args.command == "plot-curves":
        print(f"wrote {plot_training_curves(args.logs, args.out)}", file=sys.stderr)
    else:
        out = args.out if args.out is not None else args.run_dir / "tables" / KNN_PLOT_NAME
        print(f"wrote {plot_knn_top1_vs_k(load_records(args.run_dir), out)}", file=sys.stderr)
    return 0
