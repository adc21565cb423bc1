"""Process groups, gathers with gradient and a sync BN that runs on any backend.

Ranks come from the environment: ``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/
``MASTER_ADDR``; under SLURM (``srun`` or submitit) ``SLURM_PROCID``/``SLURM_NTASKS``/
``SLURM_LOCALID`` are used and the master is the first host of ``SLURM_JOB_NODELIST`` (what
submitit's ``JobEnvironment`` exposes), so multi-node jobs need no extra flags. A single process
without those variables runs undistributed with the same code.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from pretrain.precision import at_least_float32


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _slurm_master() -> str:
    nodelist = os.environ.get("SLURM_JOB_NODELIST", "127.0.0.1")
    try:
        return subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                              check=True).stdout.split()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return nodelist.split(",")[0]


def env_info() -> DistInfo:
    """This process's rank, world size and local rank, from torchrun's or SLURM's variables."""
    if "WORLD_SIZE" in os.environ and "RANK" in os.environ:
        return DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in os.environ:
        os.environ.setdefault("MASTER_ADDR", _slurm_master())
        os.environ.setdefault("MASTER_PORT", str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000))
        return DistInfo(int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"]),
                        int(os.environ.get("SLURM_LOCALID", 0)))
    return DistInfo()


def init(backend: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when there is more than one rank; return the info and the device."""
    info = env_info()
    device = torch.device("cpu")
    if torch.cuda.is_available():
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if info.world_size > 1 and not dist.is_initialized():
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=info.rank, world_size=info.world_size)
    return info, device


def shutdown() -> None:
    """Leave the process group once every rank has reached this point.

    A rank that exits while the group is alive can die in gloo's teardown ("terminate called
    without an active exception", SIGABRT: 1 launch in 4 on the 2-core test machine), which fails
    the whole torchrun job after the work is done; PyTorch asks for ``destroy_process_group``.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank in the group (0 when undistributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradient over ranks and keeps this rank's slice.

    Every rank computes the same loss on the gathered tensor; summing the gradients of all
    ranks' copies and DDP's averaging then give exactly the single-process gradient.
    (all_reduce rather than reduce_scatter, which gloo lacks; as lightly's ``gather.py``.)
    """

    @staticmethod
    def forward(ctx, tensor):
        ctx.rank, ctx.size = dist.get_rank(), tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone(memory_format=torch.contiguous_format)  # never reduce autograd's buffer in place
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.size:(ctx.rank + 1) * ctx.size]


def gather(tensor: torch.Tensor, with_grad: bool = True) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank in rank order (identity when undistributed)."""
    if world_size() == 1:
        return tensor
    if with_grad and tensor.requires_grad:
        return _GatherWithGrad.apply(tensor)
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.detach().contiguous())
    return torch.cat(parts)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """In-place sum over ranks of a no-grad tensor (identity when undistributed)."""
    if world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


class _AllReduceMean(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor):
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor / dist.get_world_size()

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad / dist.get_world_size()


class NaiveSyncBatchNorm(nn.BatchNorm2d):
    """Batch statistics averaged over ranks with all_reduce (any backend, CPU included).

    As Detectron2's ``NaiveSyncBatchNorm``: the mean and mean of squares are averaged over
    ranks (equal per-rank batches), with gradient, in fp32 for half inputs and in the input's
    precision otherwise (float64 for the exact DDP-equivalence tests); running statistics use the unbiased global
    variance like ``nn.BatchNorm``. Works for (N, C) and (N, C, H, W) inputs and keeps BN's
    state_dict keys, so checkpoints are unchanged.
    """

    def _check_input_dim(self, x):
        if x.dim() not in (2, 4):
            raise ValueError(f"expected 2D or 4D input, got {x.dim()}D")

    def forward(self, x):
        if not self.training or world_size() == 1:
            return super().forward(x)
        dims = [0] if x.dim() == 2 else [0, 2, 3]
        shape = (1, -1) if x.dim() == 2 else (1, -1, 1, 1)
        x32 = at_least_float32(x)
        stats = torch.cat([x32.mean(dim=dims), (x32**2).mean(dim=dims)])
        mean, meansq = _AllReduceMean.apply(stats).chunk(2)
        var = meansq - mean * mean
        if self.track_running_stats:
            count = x.numel() // x.shape[1] * world_size()
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * count / max(1, count - 1), alpha=m)
        out = (x32 - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """torch's SyncBatchNorm on CUDA, :class:`NaiveSyncBatchNorm` elsewhere; a no-op undistributed."""
    if world_size() == 1:
        return module
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_naive(module)


def _convert_naive(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        sync = NaiveSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                  module.track_running_stats)
        if module.affine:  # the same Parameters (their requires_grad kept: a frozen momentum BN stays frozen)
            sync.weight, sync.bias = module.weight, module.bias
        if module.track_running_stats:
            sync.running_mean, sync.running_var = module.running_mean, module.running_var
            sync.num_batches_tracked = module.num_batches_tracked
        return sync
    for name, child in module.named_children():
        module.add_module(name, _convert_naive(child))
    return module
