"""The smallest local pipeline with a dependent stage, for the runner tests: pretrain, then convert.

The tests of a stage's exit status (``test_slurm_stage_status.py``) and of Ctrl-C
(``test_slurm_interrupt.py``) both need a pipeline file (the format of ``slurm/pipeline.py``) whose
second stage depends on the first: they differ only in the pretraining arguments, so the file is
written once here. The conversion stage turns the pretraining checkpoint into a torchvision file,
the cheapest converter target.
"""

from __future__ import annotations

import json
from pathlib import Path


def write_pretrain_then_convert(folder: Path, name: str, pretrain_args: list[str]) -> Path:
    """Write ``folder/<name>.yaml`` (run directory ``folder/run``, local executor, one stage at a time)
    with the stages ``pretrain`` (``pretrain_args``, which may use ``{run_dir}``) and ``convert``
    (after ``pretrain``: its checkpoint -> ``{run_dir}/torchvision.pth``); return its path."""
    path = folder / f"{name}.yaml"
    path.write_text(f"""
name: {name}
run_dir: {folder / 'run'}
executor: local
max_parallel: 1
stages:
  - name: pretrain
    command: pretrain
    args: {json.dumps(pretrain_args)}
  - name: convert
    command: converters
    after: [pretrain]
    args: ["{{run_dir}}/pretrain/checkpoint.pth", "-o", "{{run_dir}}/torchvision.pth", "--to", "torchvision"]
""")
    return path
