"""``python -m pretrain CONFIG [key=value ...]``: train (or resume) one encoder.

Exit status: 0 when every epoch is done and the checkpoint is final; 2 for bad input
(one ``error:`` line); 3 when the run stopped unfinished, so a SLURM ``afterok`` dependent
never starts on a half-trained checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pretrain import distributed
from pretrain.config import resolve
from pretrain.engine import EXIT_UNFINISHED, Unfinished, train
from resa_core.errors import run_cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="YAML config (see configs/pretrain/)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. optim.base_lr=0.5")
    args = parser.parse_args(argv)
    config = resolve(args.config, args.overrides)
    try:
        ckpt = train(config)
    except Unfinished as stop:
        print(f"unfinished: {stop}", file=sys.stderr)
        return EXIT_UNFINISHED
    distributed.shutdown()
    print(f"checkpoint: {ckpt}")
    return 0


if __name__ == "__main__":
    run_cli(main)
