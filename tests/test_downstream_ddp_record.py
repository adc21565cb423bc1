"""Under torchrun, only rank 0 writes the result record (downstream/cli.py, docs/classification.md).

Low-shot fine-tuning and the ImageNet linear protocol train on images and run under
``torchrun --nproc_per_node=G``. Here 2 gloo ranks on CPU (``--standalone``: a free port) run
``python -m downstream lowshot``; every ``write_json_atomic`` of ``downstream.cli`` is logged with
the writing rank, so a second writer is seen even though both would write the same path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_downstream_layouts import write_image_tree

WORKER = """
import os, sys
import downstream.cli as cli
from resa_core.errors import run_cli

real = cli.write_json_atomic

def logged(path, data, *args, **kwargs):
    with open(os.environ["WRITERS_LOG"], "a") as log:
        log.write(os.environ["RANK"] + "\\n")
    return real(path, data, *args, **kwargs)

cli.write_json_atomic = logged
run_cli(cli.main, sys.argv[1:])
"""


@pytest.mark.slow
def test_two_ranks_write_one_record_from_rank_0(tmp_path):
    data = tmp_path / "data"
    write_image_tree(data / "train", {"cat": 20, "dog": 20})
    write_image_tree(data / "test", {"cat": 2, "dog": 2}, seed=1)
    (tmp_path / "worker.py").write_text(WORKER)
    writers = tmp_path / "writers.log"
    env = {**os.environ, "WRITERS_LOG": str(writers), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(tmp_path / "worker.py"), "lowshot", "--dataset", "imagefolder", "--weights", "random:resnet18",
         "--run-dir", str(tmp_path / "run"), f"data_root={data}", "label_subset=10percent", "epochs=1",
         "train_batch_size=4", "image_size=16", "resize_size=16", "num_workers=0"],
        capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert writers.read_text().split() == ["0"]
    (path,) = (tmp_path / "run" / "records" / "lowshot").rglob("*.json")
    assert json.loads(path.read_text())["status"] == "ok"
