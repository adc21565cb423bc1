from resa_core.errors import run_cli
from slurm.cli import main

run_cli(main)
