"""One way to time two implementations against each other, shared by every benchmark here.

:func:`compare` runs ``ours`` and ``reference`` under the same conditions and turns their wall
times into a figure that can be trusted and compared across commits:

* threads pinned to the same number on both sides: torch intra-op threads *and* the BLAS /
  OpenMP pools of NumPy, scikit-learn and friends (``threadpoolctl``), restored afterwards;
* one warm-up call of each side before timing (lazy initialisation, allocator, caches);
* the order of the two sides alternates per repeat, so neither always runs on a cooler or
  hotter machine;
* the figure is the median over repeats of the per-repeat ratio, with its min and max, of the
  wall times and, beside it, of the process CPU times (``time.process_time``): on a machine
  shared with other jobs the CPU-time ratio leaves out the time slices the process waited for
  a core (it still pays for cache and memory-bandwidth contention); on an idle machine at one
  thread the two agree;
* one JSON line per figure is appended to ``benchmarks/results/<benchmark>.jsonl`` with the git
  commit, the CPU model and the thread count, so figures of two commits (or two machines) can
  be told apart and compared.

Wall times on a shared machine are noisy: the spread says how much.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@contextlib.contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """torch intra-op threads and every BLAS/OpenMP pool limited to ``threads``; restored on exit."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_commit() -> str:
    """``HEAD``'s SHA, with ``-dirty`` when tracked files other than ``benchmarks/results/`` have
    uncommitted changes; ``unknown`` outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        # the result files themselves do not make the code dirty (a run appends to them)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)benchmarks/results"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def _timed(function: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    start, start_cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - start, time.process_time() - start_cpu


def _ratios(ours: list[float], reference: list[float], ratio: str) -> list[float]:
    return [(r / o if ratio == "reference/ours" else o / r) for o, r in zip(ours, reference, strict=True)]


def compare(
    benchmark: str, figure: str, ours: Callable[[], object], reference: Callable[[], object], *,
    threads: int, repeats: int, ratio: str, goal: str, params: dict | None = None, record: bool = True,
    warm_ups: tuple[Callable[[], object], Callable[[], object]] | None = None,
) -> dict:
    """Time both sides ``repeats`` times (after one warm-up each) with ``threads`` threads; print and record.

    ``warm_ups`` (ours, reference) replaces the warm-up calls, e.g. by the same work on a few
    items where one full call of the reference takes long.

    ``ratio`` is ``"reference/ours"`` (a speed-up: higher is better) or ``"ours/reference"``
    (an overhead: lower is better). Returns the figure's record (also appended to
    ``benchmarks/results/<benchmark>.jsonl`` unless ``record`` is false).
    """
    if ratio not in ("reference/ours", "ours/reference"):
        raise ValueError(f"ratio must be 'reference/ours' or 'ours/reference', got {ratio!r}")
    if repeats < 1 or threads < 1:
        raise ValueError("repeats and threads must be positive")
    times = {"ours": [], "reference": []}
    cpu_times = {"ours": [], "reference": []}
    sides = {"ours": ours, "reference": reference}
    with pinned_threads(threads):
        for warm_up in warm_ups or (ours, reference):
            warm_up()
        for repeat in range(repeats):
            order = ("ours", "reference") if repeat % 2 == 0 else ("reference", "ours")
            for name in order:
                wall, cpu = _timed(sides[name])
                times[name].append(wall)
                cpu_times[name].append(cpu)
    ratios = _ratios(times["ours"], times["reference"], ratio)
    cpu_ratios = _ratios(cpu_times["ours"], cpu_times["reference"], ratio)
    result = {
        "benchmark": benchmark, "figure": figure, "ratio": ratio, "goal": goal,
        "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        "ours_s_median": statistics.median(times["ours"]), "reference_s_median": statistics.median(times["reference"]),
        "ours_s": times["ours"], "reference_s": times["reference"], "repeats": repeats, "threads": threads,
        "cpu_ratio_median": statistics.median(cpu_ratios), "cpu_ratio_min": min(cpu_ratios),
        "cpu_ratio_max": max(cpu_ratios), "ours_cpu_s": cpu_times["ours"], "reference_cpu_s": cpu_times["reference"],
        "load_average": _load_average(),
        "params": params or {}, "commit": git_commit(), "cpu": cpu_model(), "cpus_online": os.cpu_count(),
        "torch": torch.__version__, "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
    }
    print(f"{figure}: ours {result['ours_s_median']:.3f} s, reference {result['reference_s_median']:.3f} s "
          f"(medians); {ratio} median {result['ratio_median']:.2f}x (min {result['ratio_min']:.2f}, "
          f"max {result['ratio_max']:.2f}) over {repeats} repeats, {threads} thread(s); goal {goal}")
    print(f"  by process CPU time: {ratio} median {result['cpu_ratio_median']:.2f}x "
          f"(min {result['cpu_ratio_min']:.2f}, max {result['cpu_ratio_max']:.2f}); "
          f"load average {result['load_average']}")
    if record:
        append_result(benchmark, result)
    return result


def _load_average() -> float | None:
    """The 1-minute load average when the benchmark finished (``None`` where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def append_result(benchmark: str, result: dict) -> Path:
    """Append ``result`` as one JSON line to ``benchmarks/results/<benchmark>.jsonl`` (one ``write`` call)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{benchmark}.jsonl"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(result, sort_keys=True) + "\n")
    return path


def print_conditions(threads: int) -> None:
    """One line naming the commit, CPU and pinned thread count, and a reminder that timings are noisy."""
    print(f"commit {git_commit()}, CPU {cpu_model()} ({os.cpu_count()} online), threads pinned to {threads} "
          "on both sides (torch + BLAS/OpenMP); wall times on a shared machine are noisy")
