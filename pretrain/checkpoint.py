"""Writing and reading the pretraining checkpoint (DESIGN.md contract 1, docs/contracts.md).

One file, ``<output_dir>/checkpoint.pth``, replaced atomically at every save, holds both the
transfer-ready encoders and the full ``train_state`` for exact resume: the method's
state_dict (online and momentum networks, BN statistics), optimizer, GradScaler, the
momentum-schedule value, the RNG states in use (torch CPU and CUDA), and the sampler
position (``epoch`` complete epochs plus ``position`` global batches; the learning rate and the
momentum schedule are functions of ``global_step``). It contains tensors and plain containers
only, so it loads with ``torch.load(..., weights_only=True)``.
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


def rng_states() -> dict:
    states = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda_rng"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(train_state: dict) -> None:
    torch.set_rng_state(train_state["torch_rng"])
    if "cuda_rng" in train_state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(train_state["cuda_rng"])


def save_checkpoint(path: Path, method: nn.Module, optimizer: torch.optim.Optimizer, config: dict,
                    epoch: int, global_step: int, position: int, epoch_loss: dict,
                    scaler: torch.amp.GradScaler | None = None, model_state: dict | None = None,
                    rng: dict | None = None) -> None:
    """Save after ``global_step`` steps: ``epoch`` complete epochs plus ``position`` batches.

    ``model_state``/``rng`` override the live ones (a step-boundary snapshot taken mid-step).
    ``epoch_loss`` (``{"sum", "batches"}`` of the current epoch's step losses so far) lets a
    resumed run log the whole epoch's mean loss, not the mean of its own batches only.
    """
    state = {
        "format_version": FORMAT_VERSION,
        "method": config["method"],
        "arch": config["arch"],
        "config": config,
        "epoch": epoch,
        "global_step": global_step,
        "train_state": {
            "model": model_state if model_state is not None else method.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else {},
            "momentum": float(getattr(method, "momentum", 0.0)),
            **(rng if rng is not None else rng_states()),
            "sampler": {"epoch": epoch, "position": position},
            "epoch_loss": dict(epoch_loss),
        },
    }
    model_state = state["train_state"]["model"]
    for key in method.transfer_encoders():
        prefix = f"{key}."
        state[key] = {name[len(prefix):]: tensor.detach().cpu().clone()
                      for name, tensor in model_state.items() if name.startswith(prefix)}
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


def _prior_and_data(config: dict) -> dict:
    """The protocol keys of the priors extension (docs/priors.md); absent in older checkpoints: their defaults."""
    loss, data = config.get("loss", {}), config.get("data", {})
    prior = loss.get("prior", "uniform")
    return {"loss.prior": prior, "loss.prior_tau": loss.get("prior_tau") if prior != "uniform" else None,
            "data.long_tail_ratio": data.get("long_tail_ratio", 0.0)}


def check_compatible(state: dict, config: dict, path: Path) -> None:
    """Resuming from a checkpoint of another arch, method, variant, DSA setting, cluster prior or long-tail
    profile is an error, not a silent restart (runs with different priors never share a checkpoint)."""
    saved_variant = state.get("config", {}).get("variant", "paper")
    saved_dsa = state.get("config", {}).get("dsa", {}).get("enabled", False)  # the DSA regulariser's parameters
    for key, saved, wanted in (("arch", state["arch"], config["arch"]), ("method", state["method"], config["method"]),
                               ("variant", saved_variant, config["variant"]),
                               ("dsa.enabled", saved_dsa, config["dsa"]["enabled"])):
        if saved != wanted:
            raise UserError(f"{path}: checkpoint {key} is '{saved}' but the config asks for "
                            f"'{wanted}'; use another output_dir")
    saved, wanted = _prior_and_data(state.get("config", {})), _prior_and_data(config)
    for key in saved:
        if saved[key] != wanted[key]:
            raise UserError(f"{path}: checkpoint {key} is {saved[key]!r} but the config asks for "
                            f"{wanted[key]!r}; use another output_dir")
