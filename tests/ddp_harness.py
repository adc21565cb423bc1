"""Two CPU gloo ranks for the DDP-equivalence tests: the torchrun launch and each rank's results read back.

Every multi-GPU path has a test that runs it on 2 CPU processes (gloo) and compares it with one
process on the same global batch in float64 (the tests' standard). Those tests share their
scaffolding, kept once here so that a fix to it (the environment the ranks see, a timeout, how
a failure is reported) reaches all of them:

* ``torchrun(args)``: ``python -m torch.distributed.run --nproc_per_node=2`` on a free port
  (never a fixed one: concurrent test sessions would collide) with the repository on
  ``PYTHONPATH`` (a worker imports this checkout from any directory) and one OpenMP thread;
  a failing launch fails the test with the tail of its stderr.
* ``run_worker(folder, body)``: writes ``WORKER_HEADER`` + ``body`` + the footer to
  ``folder/worker.py``, runs it on the 2 ranks and returns ``[out of rank 0, out of rank 1]``.
  ``body`` runs with ``json``, ``sys``, ``torch`` and ``pretrain.distributed`` imported, one torch
  thread and ``info, device = distributed.init("gloo")``, and leaves its JSON-serialisable results
  in ``out``. The comparisons stay in each test: this module only launches and reads back.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
RANKS = 2

WORKER_HEADER = """
import json, sys, torch
from pretrain import distributed
torch.set_num_threads(1)
info, device = distributed.init("gloo")
"""
WORKER_FOOTER = """
json.dump(out, open(sys.argv[1] + f"/rank{info.rank}.json", "w"))
distributed.shutdown()
"""


def free_port() -> int:
    """A TCP port nothing listens on now, for the rendezvous of one launch."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(args: list[str], timeout: float = 600) -> None:
    """Run ``args`` (a script and its arguments, or ``-m module ...``) on 2 gloo ranks; fail on a non-zero exit."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={RANKS}",
               f"--master_port={free_port()}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]


def run_worker(folder: Path, body: str, timeout: float = 600) -> list[dict]:
    """Run ``body`` on 2 gloo ranks (module docstring) and return each rank's ``out``, rank 0 first."""
    script = folder / "worker.py"
    script.write_text(WORKER_HEADER + body + WORKER_FOOTER)
    torchrun([str(script), str(folder)], timeout)
    return [json.loads((folder / f"rank{rank}.json").read_text()) for rank in range(RANKS)]
