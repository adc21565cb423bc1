"""The few torch.distributed calls the image-training tasks need, inert in a single process.

Launched by ``torchrun --nproc_per_node=G -m downstream ...`` (``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK`` set), the process group is initialised on first use (NCCL on GPUs, Gloo on CPU).
Only the main process writes the result record (:mod:`downstream.cli`).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from pretrain.distributed import shutdown  # noqa: F401  (leave the group at the end of a run: one helper for both)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def _init() -> None:
    if world_size() > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def device() -> torch.device:
    _init()
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) if world_size() > 1 else 0)
    return torch.device("cpu")


def wrap(model: nn.Module, trainable_encoder: bool) -> nn.Module:
    """DistributedDataParallel over the trained parameters (the head alone for a frozen encoder)."""
    if world_size() == 1:
        return model
    _init()
    if trainable_encoder:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model) if torch.cuda.is_available() else model
        return nn.parallel.DistributedDataParallel(model)
    model.head = nn.parallel.DistributedDataParallel(model.head)
    return model


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if world_size() > 1:
        _init()
        dist.all_reduce(tensor)
    return tensor
