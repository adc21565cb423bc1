"""Pre-emption: stop at a step boundary, save, and exit unfinished; or requeue under submitit.

Two mechanisms, never both at once:

* **torchrun / plain processes.** :func:`install_handlers` (called by the engine) catches
  SIGUSR2 (SLURM's ``--signal=USR2@<s>`` warning) and SIGTERM (pre-emption, ``scancel``) *only
  when no other Python handler is installed*. The handler just sets a flag; the engine
  checks it at the next step boundary (all ranks agree via an all_reduce), saves the
  checkpoint and stops with :class:`pretrain.engine.Unfinished`, so the CLI exits 3: a SLURM
  ``afterok`` dependent never starts on a half-trained checkpoint.
* **submitit.** :class:`PretrainJob` is a ``submitit.helpers.Checkpointable``; submitit's own
  SIGUSR2 handler (present, so the engine installs none) calls :meth:`PretrainJob.checkpoint`,
  which saves the state of the last step boundary of the running trainer and returns a
  ``DelayedSubmission`` of the same job, which submitit requeues. The resumed job reads the
  checkpoint and continues exactly.

Usage (issue-8 side)::

    from pretrain.preemption import PretrainJob
    job = executor.submit(PretrainJob(), "configs/pretrain/imagenet_r50_bs256.yaml", ["output_dir=/ckpt/r50"])
    job.result()  # the checkpoint path; raises if the run stopped unfinished (e.g. run.max_steps)
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from typing import Any

import submitit

STOP_SIGNALS = (signal.SIGUSR2, signal.SIGTERM)
_state: dict[str, Any] = {"stop": None, "trainer": None}


def request_stop(reason: str) -> None:
    _state["stop"] = reason


def stop_reason() -> str | None:
    """Why a stop was requested (a signal name), or None."""
    return _state["stop"]


def _handler(signum, frame) -> None:
    request_stop(signal.Signals(signum).name)


def install_handlers() -> dict:
    """Install the flag-setting handler on free signals; return the previous handlers to restore.

    Only the main thread may install handlers; training started in another thread installs none.
    """
    _state["stop"] = None
    previous = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for sig in STOP_SIGNALS:
        current = signal.getsignal(sig)
        if current in (signal.SIG_DFL, None):
            previous[sig] = current
            signal.signal(sig, _handler)
    return previous


def restore_handlers(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def set_active_trainer(trainer: Any | None) -> None:
    """The engine registers itself so that :meth:`PretrainJob.checkpoint` can save it."""
    _state["trainer"] = trainer


class PretrainJob(submitit.helpers.Checkpointable):
    """``python -m pretrain CONFIG OVERRIDES`` as a requeueable submitit job.

    ``__call__(config_path, overrides)`` trains (or resumes) and returns the checkpoint path
    as a string; a run that stops unfinished raises ``RuntimeError`` so the job fails and no
    ``afterok`` dependent starts. ``checkpoint(config_path, overrides)`` is called by
    submitit on pre-emption/timeout: it saves the last step-boundary state of the trainer
    running in this process (on rank 0; nothing when training has not started) and returns
    the resubmission of the same call.
    """

    def __call__(self, config_path: str, overrides: Sequence[str] = ()) -> str:
        from pretrain.config import resolve
        from pretrain.engine import Unfinished, train

        try:
            return str(train(resolve(config_path, list(overrides))))
        except Unfinished as stop:
            raise RuntimeError(f"pretraining stopped unfinished: {stop}") from None

    def checkpoint(self, config_path: str, overrides: Sequence[str] = ()) -> submitit.helpers.DelayedSubmission:
        trainer = _state["trainer"]
        if trainer is not None:
            trainer.save_last_boundary()
        return submitit.helpers.DelayedSubmission(PretrainJob(), config_path, list(overrides))
