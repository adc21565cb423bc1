"""What a submitted job runs: one stage entry point, in the job's own process.

A non-zero status or a bad-input error raises :class:`StageFailed`, so the submitit job fails,
the SLURM job exits non-zero and ``afterok`` dependents never start. Every job is a submitit
``Checkpointable``: on the pre-emption / time-limit signal (USR2) submitit calls
``checkpoint()`` and requeues the same job (same SLURM id, so dependents keep waiting), up to
the stage's ``max_requeue``. For pretrain, ``checkpoint()`` first has
:class:`pretrain.preemption.PretrainJob` save the running trainer's last step-boundary state,
so the requeued run resumes at the step it reached; a detection job is requeued with
``--resume`` (Detectron2 continues from its last checkpoint; segmentation resumes by itself);
the short stages simply run again (their writes are atomic). On success the job writes its
done marker (see :mod:`slurm.plan`).

Ctrl-C of a local run: the stage turns the first SIGINT into ``KeyboardInterrupt`` and ignores
the next ones (the runner may forward the same Ctrl-C again), so pretraining saves its last
step boundary undisturbed and exits unfinished, and the job fails without its done marker.
A runner started with SIGINT ignored (a shell's background job, ``nohup``) cannot be stopped by
Ctrl-C, so its stages keep ignoring it too (the runner sets :data:`SIGINT_IGNORED_ENV`);
otherwise a SIGINT sent to the process group would stop the stages but not the runner, which
would record them as failed and go on with the rest of the pipeline.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

import submitit

from resa_core.atomic import write_json_atomic
from resa_core.errors import UserError

SIGINT_IGNORED_ENV = "RESA_SIGINT_IGNORED"  # set to "1" in a stage's environment: leave SIGINT ignored


class StageFailed(RuntimeError):
    """A stage entry point exited unsuccessfully."""


def _interrupt_once(signum, frame) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def run_stage(command: str, argv: Sequence[str], threads: int) -> str:
    """Run ``python -m <command> <argv>`` in-process with ``threads`` CPU threads."""
    catch_ctrl_c = threading.current_thread() is threading.main_thread() and os.environ.get(SIGINT_IGNORED_ENV) != "1"
    previous = signal.signal(signal.SIGINT, _interrupt_once) if catch_ctrl_c else None
    printable = " ".join(["python -m", command, *argv])
    try:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)
        main = importlib.import_module(f"{command}.cli").main
        print(printable, flush=True)
        status = main(list(argv))
    except UserError as err:
        raise StageFailed(f"{printable}: error: {err}") from None
    except KeyboardInterrupt:
        raise StageFailed(f"{printable}: interrupted (SIGINT)") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if status:
        raise StageFailed(f"{printable}: exited with status {status}")
    return printable


class StageJob(submitit.helpers.Checkpointable):
    """A picklable, requeueable call of :func:`run_stage` that records its success in ``marker``."""

    def __init__(self, command: str, argv: Sequence[str], threads: int, marker: str, spec_hash: str):
        self.command, self.argv, self.threads = command, list(argv), threads
        self.marker, self.spec_hash = marker, spec_hash

    def __call__(self) -> str:
        printable = run_stage(self.command, self.argv, self.threads)
        write_json_atomic(Path(self.marker), {"command": self.command, "argv": self.argv,
                                              "spec_hash": self.spec_hash})
        return printable

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission:
        if self.command == "pretrain":
            from pretrain.preemption import PretrainJob

            PretrainJob().checkpoint(self.argv[0], self.argv[1:])  # saves the last step boundary
        if self.command == "downstream" and self.argv[:1] == ["detection"] and "--resume" not in self.argv:
            self.argv = [*self.argv, "--resume"]
        return submitit.helpers.DelayedSubmission(self)
