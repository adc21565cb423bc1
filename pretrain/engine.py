"""The pretraining loop: data, model, DDP, AMP, optimisation, logging, monitoring, checkpoints.

The sample order of epoch e is a permutation seeded by ``(seed, e)`` and each view's
randomness by ``(seed, e, sample index, view)`` (pretrain.data), so a run resumed from any
saved step boundary replays exactly the batches the uninterrupted run would have seen, with
any number of data-loader workers. A step is forward/backward (the state the checkpoint
holds is untouched but for BN statistics, snapshotted at the step start) followed by a
*commit* (optimizer, scaler, EMA, counters) during which the stop signals are blocked, so a
pre-emption always saves a step boundary (pretrain.preemption).
"""

from __future__ import annotations

import json
import logging
import math
import signal
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from pretrain import distributed, preemption
from pretrain.checkpoint import (
    check_compatible,
    checkpoint_path,
    load_checkpoint,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from pretrain.data.datasets import IN_MEMORY, load_train_set, open_split
from pretrain.data.loader import InMemoryBatches, LoaderBatches, rank_batches
from pretrain.data.views import view_list
from pretrain.methods import build_method, dsa_plugin
from pretrain.models import arch_spec, build_backbone
from pretrain.models.resnet import zero_init_residual
from pretrain.optim import build_optimizer, schedule, set_lr
from pretrain.schedules import peak_lr
from pretrain.vit_init import mocov3_init
from resa_core.errors import UserError

log = logging.getLogger("pretrain")

EXIT_UNFINISHED = 3
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class NonFiniteLoss(UserError):
    """The loss became NaN/inf; the last good checkpoint is left untouched."""


def _no_epoch_losses() -> dict:
    """The step-loss meter at an epoch's start: sum and count of the epoch's step losses seen so far
    (saved with the checkpoint, so a resumed run logs the whole epoch's mean)."""
    return {"sum": 0.0, "batches": 0}


class Unfinished(Exception):
    """Training stopped before its last epoch (step limit, signal); the process must exit non-zero."""


def _setup_logging(output_dir: Path, is_main: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(output_dir / "train.log")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handlers.append(file_handler)
    log.handlers = handlers
    log.setLevel(logging.INFO if is_main else logging.WARNING)
    log.propagate = False


@contextmanager
def _signals_blocked():
    """Hold SIGUSR2/SIGTERM/SIGINT until the commit is done (delivered right after), so Ctrl-C never
    leaves a half-applied optimiser step."""
    held = (*preemption.STOP_SIGNALS, signal.SIGINT)
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


@contextmanager
def process_settings(run_cfg: dict):
    """``run.num_threads`` and ``run.deterministic`` for the run; the caller's settings restored after.

    Both are process-wide torch state: a library caller (or the next test) must find them as it
    left them.
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if run_cfg["num_threads"]:
        torch.set_num_threads(run_cfg["num_threads"])
    if run_cfg["deterministic"]:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def build_model(config: dict, device: torch.device) -> torch.nn.Module:
    """The method with its encoder, seeded; MoCo v3 init for ViTs, ``model.zero_init_residual`` for
    ResNets; sync BN under DDP for ConvNets."""
    torch.manual_seed(config["seed"])
    encoder = build_backbone(config["arch"])
    if arch_spec(config["arch"]).family == "vit":
        mocov3_init(encoder, config["model"]["freeze_patch_embed"])
    elif config["model"]["zero_init_residual"]:
        zero_init_residual(encoder)
    method = dsa_plugin.attach(build_method(config["method"], config, encoder), config)
    if config["model"]["sync_bn"]:
        method = distributed.convert_sync_batchnorm(method, device)
    method = method.to(device, dtype=DTYPES[config["run"]["dtype"]])
    if config["run"]["channels_last"]:
        method = method.to(memory_format=torch.channels_last)
    if config["run"]["compile"]:
        for name in ("encoder", "momentum_encoder"):
            if hasattr(method, name):
                getattr(method, name).compile()
    return method


class Trainer:
    """One pretraining run; :meth:`run` trains to the end or raises :class:`Unfinished`."""

    def __init__(self, config: dict):
        self.config = config
        run_cfg, optim_cfg = config["run"], config["optim"]
        self.output_dir = Path(config["output_dir"])
        self.info, self.device = distributed.init(run_cfg["dist_backend"])
        _setup_logging(self.output_dir, self.info.is_main)
        world = self.info.world_size
        self.global_batch = optim_cfg["batch_size"]
        if self.global_batch % world:
            raise UserError(f"optim.batch_size {self.global_batch} is not divisible by the {world} ranks")
        self.source = self._data_source(world)
        self.steps_per_epoch = len(self.source) // self.global_batch
        if self.steps_per_epoch == 0:
            raise UserError(f"optim.batch_size {self.global_batch} exceeds the {len(self.source)} training images")
        self.total_steps = config["epochs"] * self.steps_per_epoch
        self.lr_at = schedule(optim_cfg, self.steps_per_epoch, config["epochs"])
        self.method = build_model(config, self.device)
        self.method.bind_data(len(self.source), self.steps_per_epoch * self.global_batch)
        self.optimizer = build_optimizer(dsa_plugin.param_groups(self.method), optim_cfg)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=run_cfg["amp"] == "fp16")
        self.model = self.method
        if world > 1:
            self.model = DistributedDataParallel(self.method, device_ids=[self.device] if self.device.type == "cuda"
                                                 else None, broadcast_buffers=False)
        self.ckpt = checkpoint_path(self.output_dir)
        self.epoch, self.position, self.step = 0, 0, 0
        self.epoch_loss = _no_epoch_losses()
        self.in_step, self.boundary = False, None
        self._resume()
        self.start_step = self.step  # run.max_steps counts the steps of this invocation (resume = same command)

    def _data_source(self, world: int):
        config, data_cfg = self.config, self.config["data"]
        views = view_list(config)
        args = (views, config["seed"], data_cfg["normalization"], self.global_batch)
        kwargs = {"num_workers": data_cfg["num_workers"], "rank": self.info.rank, "world": world,
                  "pin_memory": self.device.type == "cuda"}
        if data_cfg["name"] in IN_MEMORY:  # by dataset, never by worker count (pretrain.data.loader)
            return InMemoryBatches(load_train_set(data_cfg), *args, **kwargs)
        return LoaderBatches(open_split(data_cfg, "train"), *args, **kwargs)

    def _resume(self) -> None:
        if not self.ckpt.exists():
            return
        state = load_checkpoint(self.ckpt)
        check_compatible(state, self.config, self.ckpt)
        train_state = state["train_state"]
        self.method.load_state_dict(train_state["model"])
        self.optimizer.load_state_dict(train_state["optimizer"])
        if train_state.get("scaler"):
            self.scaler.load_state_dict(train_state["scaler"])
        self.method.momentum = train_state["momentum"]
        set_rng_states(train_state)
        self.epoch, self.position = train_state["sampler"]["epoch"], train_state["sampler"]["position"]
        # absent before this key existed: the epoch's mean then covers the resumed batches only
        self.epoch_loss = dict(train_state.get("epoch_loss", _no_epoch_losses()))
        self.step = state["global_step"]
        log.info("resumed from %s at epoch %d, batch %d (step %d)", self.ckpt, self.epoch, self.position, self.step)

    # --- saving -----------------------------------------------------------------------------------

    def save(self) -> None:
        """Save the current (step-boundary) state; rank 0 only."""
        if self.info.is_main:
            save_checkpoint(self.ckpt, self.method, self.optimizer, self.config, self.epoch, self.step,
                            self.position, self.epoch_loss, self.scaler)

    def save_last_boundary(self) -> None:
        """Save the last step boundary even when called mid-step (from a signal handler)."""
        if not self.in_step or self.boundary is None:
            self.save()
            return
        if self.info.is_main:
            model_state = self.method.state_dict()
            model_state.update(self.boundary["buffers"])
            save_checkpoint(self.ckpt, self.method, self.optimizer, self.config, self.epoch, self.step,
                            self.position, self.epoch_loss, self.scaler, model_state=model_state,
                            rng=self.boundary["rng"])

    def _snapshot_boundary(self) -> None:
        self.boundary = {"buffers": {name: b.detach().clone() for name, b in self.method.state_dict().items()
                                     if name.endswith(("running_mean", "running_var", "num_batches_tracked"))},
                         "rng": rng_states()}

    # --- training ---------------------------------------------------------------------------------

    def _agree(self, *flags: bool) -> list[bool]:
        """Flags OR-ed over ranks (one tiny all_reduce per step under DDP)."""
        values = torch.tensor([float(f) for f in flags], device=self.device)
        if self.info.world_size > 1:
            torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.MAX)
        return [bool(v) for v in values.tolist()]

    def _mean_over_ranks(self, loss: torch.Tensor) -> float:
        """The loss to log: the mean over ranks (fp64), the global-batch loss for every variant.

        The paper variant's ranks all hold the global loss; ``variant: official`` leaves each rank
        the loss of its own rows, whose mean is the global-batch loss (pretrain.methods.resa).
        """
        value = loss.detach().double()
        if self.info.world_size > 1:
            torch.distributed.all_reduce(value)
            value = value / self.info.world_size
        return value.item()

    def _batches(self, epoch: int, start: int):
        """``(views, positions)`` of this rank's batches: the positions ``rank_batches`` gives are the
        ones both data sources read (pretrain.data.loader), for methods with per-sample state."""
        positions = rank_batches(len(self.source), self.global_batch, self.config["seed"], epoch, start,
                                 self.info.rank, self.info.world_size)
        return zip(self.source.epoch(epoch, start, self.device), positions, strict=True)

    def _on_device(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        run_cfg = self.config["run"]
        memory_format = torch.channels_last if run_cfg["channels_last"] else torch.contiguous_format
        return [v.to(self.device, DTYPES[run_cfg["dtype"]], non_blocking=True, memory_format=memory_format)
                for v in views]

    @torch.no_grad()
    def _init_memory(self) -> None:
        """``Method.fills_memory`` (DeepCluster-v2): epoch 0's batches once, without gradient, before step 0."""
        if not self.method.fills_memory or self.step:
            return
        log.info("filling the %s memory bank (one pass over epoch 0 without gradient)", self.config["method"])
        for views, positions in self._batches(0, 0):
            self.method.batch_indices = torch.as_tensor(positions, device=self.device)
            self.method.init_memory(*self._on_device(views))

    def _train_step(self, views: list[torch.Tensor], positions=None) -> tuple[float, float, dict]:
        run_cfg = self.config["run"]
        views = self._on_device(views)
        lr = self.lr_at(self.step)
        set_lr(self.optimizer, lr, peak_lr(self.config["optim"]["base_lr"], self.global_batch))
        self.method.epoch = self.epoch
        self.method.batch_indices = None if positions is None else torch.as_tensor(positions, device=self.device)
        self._snapshot_boundary()
        self.in_step = True
        amp = run_cfg["amp"]
        autocast = torch.autocast(self.device.type, dtype=AMP_DTYPES[amp]) if amp != "none" else nullcontext()
        with autocast:
            loss, logs = self.model(*views)
        loss_value = self._mean_over_ranks(loss)
        non_finite, stop = self._agree(not math.isfinite(loss_value), preemption.stop_reason() is not None)
        if non_finite:
            self.in_step = False
            raise NonFiniteLoss(f"non-finite loss ({loss_value}) at step {self.step} (epoch {self.epoch}); "
                                f"last good checkpoint kept at {self.ckpt}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)  # a no-op without fp16
        self.method.before_optimizer_step()
        if self.config["optim"]["clip_grad"] > 0:
            torch.nn.utils.clip_grad_norm_(self.method.parameters(), self.config["optim"]["clip_grad"])
        with _signals_blocked():
            self.scaler.step(self.optimizer)
            self.scaler.update()
            logs.update(self.method.after_step((self.step + 1) / self.total_steps))
            self.step, self.position = self.step + 1, self.position + 1
            self.epoch_loss = {"sum": self.epoch_loss["sum"] + loss_value, "batches": self.epoch_loss["batches"] + 1}
            self.in_step = False
        if stop:
            preemption.request_stop(preemption.stop_reason() or "signal on another rank")
        return loss_value, lr, logs

    def run(self) -> Path:
        config, run_cfg = self.config, self.config["run"]
        if self.epoch >= config["epochs"]:
            log.info("already complete: %d/%d epochs in %s", self.epoch, config["epochs"], self.ckpt)
            return self.ckpt
        log.info("pretraining %s (%s variant)/%s on %d images, %d rank(s): %d epochs x %d steps, batch %d, "
                 "peak lr %.4g", config["method"], config["variant"], config["arch"], len(self.source),
                 self.info.world_size, config["epochs"], self.steps_per_epoch, self.global_batch, self.lr_at(
                     config["optim"]["warmup_epochs"] * self.steps_per_epoch))
        monitor = self._monitor()
        writer = self._tensorboard()
        metrics_file = (self.output_dir / "metrics.jsonl").open("a") if self.info.is_main else None
        last_save = time.monotonic()
        self.method.train()
        self._init_memory()
        progress = tqdm(total=self.total_steps, initial=self.step, desc=f"pretrain {config['method']}",
                        mininterval=5, disable=not self.info.is_main)

        def write(record: dict) -> None:
            if metrics_file is not None:
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
            if writer is not None:
                for key, value in record.items():
                    if key not in ("epoch", "step"):
                        writer.add_scalar(key, value, record["step"])

        try:
            while self.epoch < config["epochs"]:
                for views, positions in self._batches(self.epoch, self.position):
                    loss, lr, logs = self._train_step(views, positions)
                    progress.update(1)
                    if self.step % run_cfg["log_every_steps"] == 0:
                        write({"epoch": self.epoch, "step": self.step, "loss": loss, "lr": lr, **logs})
                        progress.set_postfix(loss=f"{loss:.4f}")
                    reason = preemption.stop_reason()
                    # a limit reached on the run's last step is no stop: the run finishes below
                    at_limit = (run_cfg["max_steps"] and self.step - self.start_step >= run_cfg["max_steps"]
                                and self.step < self.total_steps)
                    if at_limit or reason or time.monotonic() - last_save > 60 * run_cfg["checkpoint_every_minutes"]:
                        self.save()
                        last_save = time.monotonic()
                    if reason:
                        raise Unfinished(f"stopped by {reason} at step {self.step}; checkpoint saved, "
                                         "resume with the same command")
                    if at_limit:
                        raise Unfinished(f"stopped at step {self.step} after {run_cfg['max_steps']} steps of this "
                                         "invocation (run.max_steps); resume with the same command")
                record = {"epoch": self.epoch + 1, "step": self.step}
                if self.epoch_loss["batches"]:
                    record["epoch_loss"] = self.epoch_loss["sum"] / self.epoch_loss["batches"]
                self.epoch, self.position, self.epoch_loss = self.epoch + 1, 0, _no_epoch_losses()
                self.save()
                last_save = time.monotonic()
                if monitor is not None and self.epoch % config["monitor"]["every_epochs"] == 0:
                    record.update(monitor(self.method, self.device))
                log.info("epoch %d/%d done: %s", self.epoch, config["epochs"],
                         ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "step")))
                write(record)
        finally:
            progress.close()
            if metrics_file is not None:
                metrics_file.close()
            if writer is not None:
                writer.close()
        return self.ckpt

    def _monitor(self):
        if not self.config["monitor"]["every_epochs"] or not self.info.is_main:
            return None
        from pretrain.monitor import Monitor

        return Monitor(self.config)

    def _tensorboard(self):
        if not self.config["run"]["tensorboard"] or not self.info.is_main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return SummaryWriter(str(self.output_dir / "tensorboard"))


def train(config: dict) -> Path:
    """Run (or resume) pretraining; returns the checkpoint path once every epoch is done."""
    previous = preemption.install_handlers()
    try:
        with process_settings(config["run"]):
            trainer = Trainer(config)
            preemption.set_active_trainer(trainer)
            try:
                return trainer.run()
            except KeyboardInterrupt:  # Ctrl-C: keep the minutes spent (the last step boundary), exit unfinished
                trainer.save_last_boundary()
                raise Unfinished(f"interrupted (SIGINT) at step {trainer.step}; checkpoint saved, "
                                 "resume with the same command") from None
    finally:
        preemption.set_active_trainer(None)
        preemption.restore_handlers(previous)
