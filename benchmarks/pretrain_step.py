"""Per-step cost of ReSA against its InfoNCE ablation and a bare encoder, on one batch.

``python -m benchmarks.pretrain_step [--arch resnet18_cifar] [--image-size 32] [--batch 256] [--steps 5]``
(from the repository root).

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
import statistics
import time

import torch

from pretrain.config import resolve
from pretrain.engine import build_model
from pretrain.losses import cosine_similarity_matrix, resa_loss, sinkhorn


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, steps: int, device: torch.device) -> float:
    fn()
    times = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18_cifar")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
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


if __name__ == "__main__":
    main()
