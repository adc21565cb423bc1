"""Per-step cost of ReSA against its InfoNCE ablation and a bare encoder, on one batch; every method's step.

``python -m benchmarks.pretrain_step [--arch resnet18_cifar] [--image-size 32] [--batch 256] [--steps 5]``
(from the repository root). ``--methods all`` (or a comma list) adds the ReSA Table 4 comparison:
each registered method's full training step (forward of all views, loss, backward, optimizer
step, ``after_step``) and its peak memory, on the same encoder, image size and batch, each
method with the heads of its CIFAR-10 preset (``configs/pretrain/baselines/<method>_cifar10_resnet18.yaml``,
ReSA's ``configs/pretrain/cifar10_resnet18.yaml``, MIRA's ``configs/pretrain/mira/mira_cifar10_resnet18.yaml``).
Each method runs in its own process, so the peak is its own: resident set size on CPU
(``ru_maxrss``, includes the interpreter and the model), ``torch.cuda.max_memory_allocated`` on a
GPU. Besides wall time, the table gives the step's CPU time of the process (``time.process_time``,
all threads), which a loaded machine disturbs less. DeepCluster-v2's memory bank holds one epoch
of ``max(steps + 1, K / batch)`` batches of random unit rows; the warm-up step runs its k-means
(once per epoch in training, so outside the timed steps).

Times, on the same random batch of two views: (1) a full ReSA step (online forward of both
views, momentum forward, assignment, loss, backward, SGD step, EMA update), (2) the same step
of the InfoNCE ablation (A = I), (3) a bare encoder forward/backward of both views. It also
times the ReSA-specific part alone (Sinkhorn assignment on the encodings + Eq. 2 loss
forward/backward from the embeddings + the EMA update) and prints its share of the ReSA step
(goal: <= 5% on CPU, issue 3). With a GPU it adds images/s/GPU of ResNet-50 at batch 256 with
bf16 autocast and channels_last. Median of ``--steps`` timed steps after one warm-up step.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from pretrain.config import resolve
from pretrain.engine import build_model
from pretrain.losses import cosine_similarity_matrix, resa_loss, sinkhorn
from pretrain.methods import list_methods
from pretrain.optim import build_optimizer

# What each method's table row is built from (its CIFAR-10 preset's heads and loss settings).
PRESET_DIR = Path("configs/pretrain/baselines")
RESA_PRESETS = {"resa": Path("configs/pretrain/cifar10_resnet18.yaml"),
                "infonce": Path("configs/pretrain/cifar10_resnet18.yaml"),
                "mira": Path("configs/pretrain/mira/mira_cifar10_resnet18.yaml")}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, steps: int, device: torch.device, cpu: list | None = None) -> float:
    """Median wall seconds of ``steps`` calls after one warm-up; their median CPU seconds appended to ``cpu``."""
    fn()
    times, cpu_times = [], []
    for _ in range(steps):
        _sync(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    if cpu is not None:
        cpu.append(statistics.median(cpu_times))
    return statistics.median(times)


def method_step(method, optimizer, views, amp: bool):
    def step():
        with torch.autocast(views[0].device.type, dtype=torch.bfloat16, enabled=amp):
            loss, _ = method(*views)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        method.after_step(0.5)
    return step


def preset_for(method: str) -> Path:
    return RESA_PRESETS.get(method, PRESET_DIR / f"{method}_cifar10_resnet18.yaml")


def one_method(method: str, arch: str, image_size: int, batch: int, steps: int, device: torch.device) -> dict:
    """Median step time and peak memory of ``method`` (run in a fresh process by :func:`method_table`)."""
    overrides = [f"method={method}", f"arch={arch}", f"optim.batch_size={batch}", f"data.image_size={image_size}"]
    config = resolve(preset_for(method), overrides)
    model = build_model(config, device).train()
    optimizer = build_optimizer(model.param_groups(), config["optim"])
    n_views = 2 + config["augment"]["num_small_crops"]
    views = [torch.randn(batch, 3, image_size, image_size, device=device) for _ in range(n_views)]
    if model.fills_memory:  # DeepCluster-v2: an epoch of random unit rows (solo-learn's initial bank) >= clusters
        rows = batch * max(steps + 1, -(-max(config["loss"]["num_prototypes"]) // batch))
        model.bind_data(rows, rows)
        with torch.no_grad():
            model.memory.copy_(torch.nn.functional.normalize(torch.randn_like(model.memory), dim=-1))
            model.memory_index.copy_(torch.arange(rows, device=device))
    model.batch_indices = torch.arange(batch, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    cpu = []
    seconds = timed(method_step(model, optimizer, views, amp=device.type == "cuda"), steps, device, cpu)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"method": method, "ms": seconds * 1000, "cpu_ms": cpu[0] * 1000, "peak_mib": peak / 2**20,
            "views": n_views, "threads": torch.get_num_threads()}


def method_table(methods: list[str], args) -> list[dict]:
    rows = []
    for method in methods:
        command = [sys.executable, "-m", "benchmarks.pretrain_step", "--one", method, "--arch", args.arch,
                   "--image-size", str(args.image_size), "--batch", str(args.batch), "--steps", str(args.steps),
                   "--threads", str(args.threads)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            rows.append({"method": method, "error": result.stderr.strip().splitlines()[-1]})
            continue
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return rows


def print_table(rows: list[dict], args, device: str) -> None:
    threads = next((row["threads"] for row in rows if "threads" in row), "?")
    print(f"\nReSA Table 4 comparison on {device} ({threads} threads): {args.arch} at {args.image_size} px, batch "
          f"{args.batch}, median of {args.steps} steps (each method's CIFAR-10 preset heads)")
    print(f"  {'method':14s} {'views':>5s} {'ms/step':>10s} {'x ReSA':>7s} {'CPU ms':>10s} {'peak MiB':>9s}")
    resa = next((row["ms"] for row in rows if row["method"] == "resa" and "ms" in row), None)
    for row in rows:
        if "error" in row:
            print(f"  {row['method']:14s} error: {row['error']}")
            continue
        ratio = f"{row['ms'] / resa:7.2f}" if resa else f"{'-':>7s}"
        print(f"  {row['method']:14s} {row['views']:5d} {row['ms']:10.1f} {ratio} {row['cpu_ms']:10.1f} "
              f"{row['peak_mib']:9.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18_cifar")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--methods", default="", help="'all' or a comma list: per-method step time and peak memory")
    parser.add_argument("--only-methods", action="store_true", help="skip the ReSA / InfoNCE / bare-encoder timing")
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)  # internal: one method, JSON out
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.one:
        print(json.dumps(one_method(args.one, args.arch, args.image_size, args.batch, args.steps, device)))
        return
    methods = list_methods() if args.methods == "all" else [m for m in args.methods.split(",") if m]
    if args.only_methods:
        print_table(method_table(methods, args), args, device.type)
        return
    device = torch.device("cpu")
    overrides = [f"arch={args.arch}", f"optim.batch_size={args.batch}"]
    views = [torch.randn(args.batch, 3, args.image_size, args.image_size, device=device) for _ in range(2)]

    results = {}
    for name in ("resa", "infonce"):
        method = build_model(resolve(None, [*overrides, f"method={name}"]), device).train()
        optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
        results[name] = timed(method_step(method, optimizer, views, amp=False), args.steps, device)

    encoder = method.encoder

    def bare():
        loss = sum(encoder(v).sum() for v in views)
        loss.backward()
    results["bare encoder fwd/bwd"] = timed(bare, args.steps, device)

    with torch.no_grad():
        h1, h1m = encoder(views[0]), method.momentum_encoder(views[0])
    dim = resolve(None, overrides)["model"]["projector_out_dim"]
    z = [torch.randn(args.batch, dim, requires_grad=True) for _ in range(2)]
    zm = [torch.randn(args.batch, dim) for _ in range(2)]

    def resa_specific():
        assign = sinkhorn(cosine_similarity_matrix(h1, h1m))
        resa_loss(z[0], z[1], zm[0], zm[1], assign).backward()
        method.after_step(0.5)
    results["assignment + loss + EMA"] = timed(resa_specific, args.steps, device)

    print(f"device cpu ({torch.get_num_threads()} threads), {args.arch} at {args.image_size} px, batch {args.batch}, "
          f"median of {args.steps} steps")
    for name, seconds in results.items():
        print(f"  {name:26s} {seconds * 1000:10.1f} ms/step")
    share = results["assignment + loss + EMA"] / results["resa"]
    print(f"  share of the ReSA step in assignment + loss + EMA: {100 * share:.2f}% (goal <= 5%)")

    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        config = resolve(None, ["arch=resnet50", "model.predictor=true", "optim.batch_size=256",
                                "run.channels_last=true"])
        method = build_model(config, gpu).train()
        optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
        gviews = [torch.randn(256, 3, 224, 224, device=gpu).to(memory_format=torch.channels_last) for _ in range(2)]
        seconds = timed(method_step(method, optimizer, gviews, amp=True), args.steps, gpu)
        name = torch.cuda.get_device_name()
        print(f"  ResNet-50 ReSA, batch 256, bf16 AMP on {name}: {256 / seconds:.0f} images/s/GPU")
    if methods:
        print_table(method_table(methods, args), args, device.type)


if __name__ == "__main__":
    main()
