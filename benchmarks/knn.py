"""k-NN speed: ``downstream.tasks.knn.knn_metrics`` against a bare matmul + top-k over the same tensors.

Default sizes are the issue's: a 50k x 2048 bank, 10k queries, weighted k in {5, 10, 20},
1000 classes, float32, the task's default chunk of 256 queries. The baseline does only the
unavoidable work (per chunk: one similarity matmul and ``topk(max k)``); the ratio shows what
normalisation, deterministic tie-breaking and the vote cost on top (goal: at most 1.2x).

    .venv/bin/python -m benchmarks.knn [--bank 50000] [--queries 10000] [--dim 2048] [--repeats 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from downstream.tasks.knn import knn_metrics


def bare_matmul_topk(bank: torch.Tensor, queries: torch.Tensor, k: int, chunk: int) -> None:
    for start in range(0, len(queries), chunk):
        torch.topk(queries[start : start + chunk] @ bank.T, k, dim=1)


def best_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=int, default=50000)
    parser.add_argument("--queries", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(args.bank, args.dim, generator=generator)
    queries = torch.randn(args.queries, args.dim, generator=generator)
    bank_labels = torch.randint(0, args.classes, (args.bank,), generator=generator)
    query_labels = torch.randint(0, args.classes, (args.queries,), generator=generator)
    ks = [5, 10, 20]
    print(f"bank {tuple(bank.shape)}, queries {tuple(queries.shape)}, ks {ks}, chunk {args.chunk}, "
          f"threads {torch.get_num_threads()}")
    ours = best_time(lambda: knn_metrics(bank, bank_labels, queries, query_labels, args.classes, ks=ks,
                                         chunk_size=args.chunk), args.repeats)
    bare = best_time(lambda: bare_matmul_topk(bank, queries, max(ks), args.chunk), args.repeats)
    print(f"knn_metrics {ours:.2f} s, bare matmul+topk {bare:.2f} s, ratio {ours / bare:.3f}x (goal <= 1.2x)")


if __name__ == "__main__":
    main()
