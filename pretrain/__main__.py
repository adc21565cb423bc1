from pretrain.cli import main
from resa_core.errors import run_cli

run_cli(main)
