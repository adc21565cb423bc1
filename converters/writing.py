"""``write_backbone`` and ``convert``: canonical Backbone -> target file, never clobbering by accident."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from converters.backbone import Backbone
from converters.reading import AUTO, read_backbone
from converters.targets import Target, get_target
from converters.verify import VerifyReport, verify_written
from pretrain.models import arch_spec
from resa_core.errors import UserError


def check_output(out: Path, target: Target, force: bool) -> None:
    """Refuse a wrong suffix, a directory, or an existing file (unless ``force``)."""
    if out.suffix.lower() not in target.extensions:
        raise UserError(f"{out}: a {target.name} file must end in {' or '.join(target.extensions)}")
    if out.is_dir():
        raise UserError(f"{out}: is a directory, expected a file path")
    existing = [str(path) for path in target.files(out) if path.exists()]
    if existing and not force:
        raise UserError(f"{', '.join(existing)}: already exists; pass --force (force=True) to overwrite")


def write_backbone(backbone: Backbone, out: str | Path, to: str, force: bool = False) -> Path:
    """Write ``backbone`` as target format ``to`` at ``out`` (atomically); returns ``out``."""
    out, target = Path(out), get_target(to)
    if target.needs_standard_stem and not arch_spec(backbone.arch).standard_stem:
        raise UserError(
            f"{backbone.source_path}: arch {backbone.arch} has a CIFAR 3x3 stem, but {target.name}'s ResNet "
            "expects torchvision's 7x7 stem; convert it to torchvision instead"
        )
    family = arch_spec(backbone.arch).family
    if family not in target.families:
        hint = "timm or mmseg" if family == "vit" else "torchvision"
        raise UserError(
            f"{backbone.source_path}: arch {backbone.arch} is a {family}; the {target.name} target writes "
            f"{' and '.join(target.families)} backbones only; convert it to {hint} instead"
        )
    check_output(out, target, force)
    target.write(backbone, out)
    return out


@dataclass(frozen=True)
class Conversion:
    """What one conversion did, for the CLI to print."""

    backbone: Backbone
    out: Path
    verify: VerifyReport | None


def convert_file(
    src: str | Path,
    out: str | Path,
    to: str,
    source: str = AUTO,
    encoder: str | None = None,
    force: bool = False,
    verify: bool = False,
) -> Conversion:
    """Read ``src``, write ``out`` as ``to``, optionally verify; a failed verify removes what was written."""
    out, target = Path(out), get_target(to)
    check_output(out, target, force)  # fail before reading a large file
    backbone = read_backbone(src, source=source, encoder=encoder)
    write_backbone(backbone, out, to, force=force)
    report = None
    if verify:
        try:
            report = verify_written(backbone, out, to)
        except UserError:
            for path in target.files(out):
                path.unlink(missing_ok=True)
            raise
    return Conversion(backbone, out, report)


def convert(
    src: str | Path,
    out: str | Path,
    to: str,
    source: str = AUTO,
    encoder: str | None = None,
    force: bool = False,
    verify: bool = False,
) -> Path:
    """Convert checkpoint ``src`` to target format ``to`` at ``out``; returns ``out``.

    Refuses to overwrite an existing ``out`` without ``force``; with ``verify`` the written file is
    read back and checked (see :func:`converters.verify.verify_written`).
    """
    return convert_file(src, out, to, source=source, encoder=encoder, force=force, verify=verify).out

