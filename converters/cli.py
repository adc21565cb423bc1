"""Command line: convert one file, or a batch of files/directories into a directory.

One SRC and a file ``-o``: errors propagate (one ``error:`` line, exit 2, via ``run_cli``).
Several SRCs, a directory SRC, or an existing directory ``-o``: batch mode; each file gets one
line, a failure does not stop the others, and the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from converters.backbone import ENCODER_CHOICES
from converters.reading import AUTO
from converters.sources import list_sources
from converters.targets import get_target, list_targets
from converters.writing import Conversion, convert_file
from resa_core.errors import UserError

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".pkl", ".tar", ".ckpt", ".torch", ".safetensors")
EXIT_SOME_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m converters",
        description="Convert pretraining checkpoints to Detectron2 / MMSegmentation / torchvision / timm backbones.",
    )
    parser.add_argument("src", nargs="+", type=Path, help="checkpoint file(s), or directories of them")
    parser.add_argument("-o", "--out", required=True, type=Path, help="output file (one SRC) or directory")
    parser.add_argument("--to", required=True, choices=list_targets(), help="target format")
    parser.add_argument(
        "--from", dest="source", default=AUTO, choices=[AUTO, *list_sources()],
        help="source format (default: detect from the file's keys)",
    )
    parser.add_argument(
        "--encoder", choices=ENCODER_CHOICES, default=None,
        help="which encoder of a checkpoint holding two (default: momentum / DINO's teacher when present)",
    )
    parser.add_argument(
        "--verify", action="store_true",
        help="read the output back, load it into the target framework's model, compare features",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    return parser


def _is_checkpoint(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in CHECKPOINT_SUFFIXES


def expand_sources(paths: Sequence[Path]) -> list[Path]:
    """Files as given; directories replaced by their checkpoint files (non-recursive, sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(child for child in path.iterdir() if _is_checkpoint(child))
            if not found:
                suffixes = ", ".join(CHECKPOINT_SUFFIXES)
                raise UserError(f"{path}: no checkpoint files ({suffixes}) in this directory")
            files.extend(found)
        else:
            files.append(path)
    return files


def batch_outputs(files: Sequence[Path], out_dir: Path, extension: str) -> list[Path]:
    """``out_dir/<src stem><extension>`` per file; two sources with one output name is an error."""
    outputs = [out_dir / f"{src.stem}{extension}" for src in files]
    seen: dict[Path, Path] = {}
    for src, out in zip(files, outputs, strict=True):
        if out in seen:
            raise UserError(f"{seen[out]} and {src} would both be written to {out}; convert them separately")
        seen[out] = src
    return outputs


def describe(conversion: Conversion, detected: bool) -> str:
    """One line: paths, the format read (and whether it was detected), what it holds, coverage, verify."""
    backbone = conversion.backbone
    facts = [backbone.arch]
    if backbone.encoder:
        facts.append(f"{backbone.encoder} encoder")
    if backbone.method:
        facts.append(f"method {backbone.method}")
    if backbone.pretrain_epochs is not None:
        facts.append(f"{backbone.pretrain_epochs} epochs")
    parts = [
        f"{backbone.source_path} -> {conversion.out}",
        f"{'detected' if detected else 'read as'} {backbone.source_format} ({', '.join(facts)})",
        backbone.coverage.summary(),
    ]
    if conversion.verify:
        parts.append(conversion.verify.summary())
    return " | ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    target = get_target(args.to)
    files = expand_sources(args.src)
    batch = len(files) > 1 or any(path.is_dir() for path in args.src) or args.out.is_dir()
    options = dict(to=args.to, source=args.source, encoder=args.encoder, force=args.force, verify=args.verify)
    if not batch:
        print(describe(convert_file(files[0], args.out, **options), detected=args.source == AUTO))
        return 0
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"{args.out}: with several sources, -o must be a directory")
    outputs = batch_outputs(files, args.out, target.extensions[0])
    failed = 0
    for src, out in zip(files, outputs, strict=True):
        try:
            print(describe(convert_file(src, out, **options), detected=args.source == AUTO), flush=True)
        except UserError as err:
            failed += 1
            print(f"FAILED {src}: {err}", file=sys.stderr, flush=True)
    print(f"converted {len(files) - failed}/{len(files)} files to {args.to} in {args.out}; {failed} failed")
    return EXIT_SOME_FAILED if failed else 0
