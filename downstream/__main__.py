"""``python -m downstream``: see :mod:`downstream.cli`."""

from downstream.cli import main
from resa_core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
