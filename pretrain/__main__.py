"""``python -m pretrain``: the command-line entry point (importing this module runs nothing)."""

from pretrain.cli import main
from resa_core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
