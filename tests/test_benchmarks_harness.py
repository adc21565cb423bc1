"""Benchmark harness: pinned and restored threads, warm-up, alternating order, ratio and its JSON line."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT
from threadpoolctl import threadpool_info

from benchmarks import harness


def test_compare_alternates_order_pins_threads_and_records_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path)
    calls, seen_threads = [], set()
    clock = iter(range(1000))
    monkeypatch.setattr(harness.time, "perf_counter", lambda: next(clock))

    def side(name, ticks):
        def run():
            calls.append(name)
            seen_threads.add(torch.get_num_threads())
            seen_threads.update(pool["num_threads"] for pool in threadpool_info())
            for _ in range(ticks - 1):  # each perf_counter call advances the fake clock by one tick
                next(clock)
        return run

    before = torch.get_num_threads()
    result = harness.compare("unit", "fig", side("ours", 1), side("reference", 4), threads=1, repeats=4,
                             ratio="reference/ours", goal=">= 2x", params={"n": 3})
    assert torch.get_num_threads() == before
    assert seen_threads == {1}
    # one warm-up each, then the order alternates per repeat
    assert calls == ["ours", "reference", "ours", "reference", "reference", "ours", "ours", "reference",
                     "reference", "ours"]
    assert result["ours_s"] == [1] * 4 and result["reference_s"] == [4] * 4
    assert result["ratio_median"] == result["ratio_min"] == result["ratio_max"] == 4.0
    (line,) = (tmp_path / "unit.jsonl").read_text().splitlines()
    recorded = json.loads(line)
    assert recorded["threads"] == 1 and recorded["params"] == {"n": 3} and recorded["cpu"] and recorded["commit"]


def test_compare_rejects_an_unknown_ratio(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path)
    with pytest.raises(ValueError, match="ratio"):
        harness.compare("unit", "fig", lambda: None, lambda: None, threads=1, repeats=1, ratio="ours", goal="")


# Process CPU time counts every thread of the process, so this runs in a fresh interpreter: a thread
# another test left behind in the pytest process (and running while `waiting` sleeps) would count too.
CPU_RATIO_SCRIPT = """
import json, sys, time
from pathlib import Path
from benchmarks import harness
harness.RESULTS_DIR = Path(sys.argv[1])
calls = []

def busy():  # ~30 ms of CPU work
    calls.append("busy")
    end = time.process_time() + 0.03
    while time.process_time() < end:
        pass

def waiting():  # ~30 ms of wall time without CPU work
    calls.append("waiting")
    time.sleep(0.03)

result = harness.compare("unit", "fig", waiting, busy, threads=1, repeats=2, ratio="reference/ours", goal="",
                         warm_ups=(lambda: calls.append("warm ours"), lambda: calls.append("warm reference")))
print(json.dumps({"calls": calls, "result": result}))
"""


def test_cpu_ratio_counts_cpu_work_not_waiting_and_warm_ups_replace_the_first_calls(tmp_path):
    done = subprocess.run([sys.executable, "-c", CPU_RATIO_SCRIPT, str(tmp_path)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    outcome = json.loads(done.stdout.splitlines()[-1])
    result = outcome["result"]
    assert outcome["calls"] == ["warm ours", "warm reference", "waiting", "busy", "busy", "waiting"]
    assert min(result["reference_cpu_s"]) >= 0.03 and max(result["ours_cpu_s"]) < 0.015
    assert result["cpu_ratio_min"] > 2.0
