"""Writing and reading the pretraining checkpoint (DESIGN.md contract 1, docs/contracts.md).

One file, ``<output_dir>/checkpoint.pth``, replaced atomically at every save, holds both the
transfer-ready encoders and the full ``train_state`` for exact resume. It contains tensors and
plain containers only, so it loads with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from resa_core.atomic import torch_save_atomic
from resa_core.errors import UserError

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pth"


def checkpoint_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINT_NAME


def save_checkpoint(path: Path, method: nn.Module, optimizer: torch.optim.Optimizer, config: dict,
                    epoch: int, global_step: int, position: int) -> None:
    """Save after ``global_step`` steps: ``epoch`` complete epochs plus ``position`` batches."""
    state = {
        "format_version": FORMAT_VERSION,
        "method": config["method"],
        "arch": config["arch"],
        "config": config,
        "epoch": epoch,
        "global_step": global_step,
        "train_state": {
            "model": method.state_dict(),
            "optimizer": optimizer.state_dict(),
            "momentum": float(getattr(method, "momentum", 0.0)),
            "torch_rng": torch.get_rng_state(),
            "sampler": {"epoch": epoch, "position": position},
        },
    }
    for key, encoder in method.transfer_encoders().items():
        state[key] = {name: tensor.detach().clone() for name, tensor in encoder.state_dict().items()}
    torch_save_atomic(path, state)


def load_checkpoint(path: Path) -> dict:
    """Safe load (weights_only) with a one-line error for a truncated or foreign file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated/hostile files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: not a loadable checkpoint ({reason[:200]})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION or "train_state" not in state:
        raise UserError(f"{path}: not a resa-bench checkpoint (format_version {FORMAT_VERSION} expected)")
    return state


def check_compatible(state: dict, config: dict, path: Path) -> None:
    """Resuming from a checkpoint of another arch or method is an error, not a silent restart."""
    for key in ("arch", "method"):
        if state[key] != config[key]:
            raise UserError(f"{path}: checkpoint {key} is '{state[key]}' but the config asks for "
                            f"'{config[key]}'; use another output_dir")
