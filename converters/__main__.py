"""``python -m converters SRC [SRC ...] -o OUT --to {detectron2,mmseg,torchvision,timm}``."""

from converters.cli import main
from resa_core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
