"""The pretraining loop: data order, views, optimisation, logging, checkpoints and resume.

The sample order of epoch e is a permutation seeded by ``(seed, e)`` and each view's
randomness by ``(seed, e, sample index, view)`` (pretrain.data.views), so a run resumed from
any saved step boundary replays exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pretrain.checkpoint import check_compatible, checkpoint_path, load_checkpoint, save_checkpoint
from pretrain.data.datasets import load_train_set
from pretrain.data.views import ViewParams, augment_batch, weak_view
from pretrain.methods import build_method
from pretrain.models import build_backbone
from pretrain.schedules import lr_at, peak_lr
from resa_core.data.tensors import normalize, to_float_rgb
from resa_core.errors import UserError

log = logging.getLogger("pretrain")

EXIT_UNFINISHED = 3


class NonFiniteLoss(UserError):
    """The loss became NaN/inf; the last good checkpoint is left untouched."""


class Unfinished(Exception):
    """Training stopped before its last epoch (step limit); the process must exit non-zero."""


def _setup_logging(output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(output_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers = [handler, logging.StreamHandler()]
    log.setLevel(logging.INFO)
    log.propagate = False


def _views(config: dict) -> tuple[ViewParams, ViewParams]:
    aug, size = config["augment"], config["data"]["image_size"]
    standard = ViewParams(crop_size=size, **aug)
    return weak_view(size, aug["min_scale"], aug["max_scale"]), standard


def _build(config: dict) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(config["seed"])
    method = build_method(config["method"], config, build_backbone(config["arch"]))
    optim_cfg = config["optim"]
    optimizer = torch.optim.SGD(
        (p for p in method.parameters() if p.requires_grad),
        lr=peak_lr(optim_cfg["base_lr"], optim_cfg["batch_size"]),
        momentum=optim_cfg["momentum"],
        weight_decay=optim_cfg["weight_decay"],
    )
    return method, optimizer


def train(config: dict) -> Path:
    """Run (or resume) pretraining; returns the checkpoint path once every epoch is done."""
    output_dir = Path(config["output_dir"])
    _setup_logging(output_dir)
    run_cfg, optim_cfg, seed = config["run"], config["optim"], config["seed"]
    if run_cfg["num_threads"]:
        torch.set_num_threads(run_cfg["num_threads"])
    if run_cfg["deterministic"]:
        torch.use_deterministic_algorithms(True)

    data = load_train_set(config["data"])
    batch_size = optim_cfg["batch_size"]
    steps_per_epoch = len(data.labels) // batch_size
    if steps_per_epoch == 0:
        raise UserError(f"optim.batch_size {batch_size} exceeds the {len(data.labels)} training images")
    total_steps = config["epochs"] * steps_per_epoch
    peak = peak_lr(optim_cfg["base_lr"], batch_size)
    warmup_steps = optim_cfg["warmup_epochs"] * steps_per_epoch
    weak_params, standard_params = _views(config)
    stats = config["data"]["normalization"]

    method, optimizer = _build(config)
    ckpt = checkpoint_path(output_dir)
    epoch, position, step = 0, 0, 0
    if ckpt.exists():
        state = load_checkpoint(ckpt)
        check_compatible(state, config, ckpt)
        train_state = state["train_state"]
        method.load_state_dict(train_state["model"])
        optimizer.load_state_dict(train_state["optimizer"])
        method.momentum = train_state["momentum"]
        torch.set_rng_state(train_state["torch_rng"])
        epoch, position = train_state["sampler"]["epoch"], train_state["sampler"]["position"]
        step = state["global_step"]
        log.info("resumed from %s at epoch %d, batch %d (step %d)", ckpt, epoch, position, step)
    if epoch >= config["epochs"]:
        log.info("already complete: %d/%d epochs in %s", epoch, config["epochs"], ckpt)
        return ckpt

    log.info("pretraining %s/%s on %d images: %d epochs x %d steps, batch %d, peak lr %.4g",
             config["method"], config["arch"], len(data.labels), config["epochs"], steps_per_epoch,
             batch_size, peak)
    metrics_file = (output_dir / "metrics.jsonl").open("a")
    last_save = time.monotonic()
    method.train()
    progress = tqdm(total=total_steps, initial=step, desc=f"pretrain {config['method']}", mininterval=5)
    try:
        while epoch < config["epochs"]:
            order = np.random.default_rng((seed, epoch)).permutation(len(data.labels))
            epoch_loss, epoch_batches = 0.0, 0
            while position < steps_per_epoch:
                batch = order[position * batch_size:(position + 1) * batch_size]
                images = to_float_rgb(data.images[batch])
                weak = normalize(augment_batch(images, data.indices[batch], weak_params, seed, epoch, 0), stats)
                standard = normalize(
                    augment_batch(images, data.indices[batch], standard_params, seed, epoch, 1), stats)
                lr = lr_at(step, total_steps, warmup_steps, peak, peak * optim_cfg["min_lr_ratio"])
                for group in optimizer.param_groups:
                    group["lr"] = lr
                loss, logs = method(weak, standard)
                if not math.isfinite(loss.item()):
                    raise NonFiniteLoss(f"non-finite loss ({loss.item()}) at step {step} (epoch {epoch}); "
                                        f"last good checkpoint kept at {ckpt}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                logs.update(method.after_step((step + 1) / total_steps))
                step, position = step + 1, position + 1
                epoch_loss, epoch_batches = epoch_loss + loss.item(), epoch_batches + 1
                progress.update(1)
                if step % run_cfg["log_every_steps"] == 0:
                    record = {"epoch": epoch, "step": step, "loss": loss.item(), "lr": lr, **logs}
                    metrics_file.write(json.dumps(record) + "\n")
                    metrics_file.flush()
                    progress.set_postfix(loss=f"{loss.item():.4f}")
                at_limit = run_cfg["max_steps"] and step >= run_cfg["max_steps"]
                if at_limit or time.monotonic() - last_save > 60 * run_cfg["checkpoint_every_minutes"]:
                    save_checkpoint(ckpt, method, optimizer, config, epoch, step, position)
                    last_save = time.monotonic()
                if at_limit:
                    raise Unfinished(f"stopped at step {step} (run.max_steps); resume with the same command")
            epoch, position = epoch + 1, 0
            save_checkpoint(ckpt, method, optimizer, config, epoch, step, position)
            last_save = time.monotonic()
            log.info("epoch %d/%d done: mean loss %.4f", epoch, config["epochs"],
                     epoch_loss / max(1, epoch_batches))
            metrics_file.write(json.dumps({"epoch": epoch, "step": step,
                                           "epoch_loss": epoch_loss / max(1, epoch_batches)}) + "\n")
            metrics_file.flush()
    finally:
        progress.close()
        metrics_file.close()
    return ckpt
