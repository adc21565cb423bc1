"""``python -m results``: see :mod:`results.cli`."""

from resa_core.errors import run_cli
from results.cli import main

run_cli(main)
