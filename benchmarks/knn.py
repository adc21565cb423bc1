"""k-NN speed: ``downstream.tasks.knn.knn_metrics`` against a bare matmul + top-k over the same tensors.

Default sizes (about a minute on an idle core; ``--bank 50000 --queries 10000`` is closer to
an ImageNet-size evaluation but takes ~25 minutes): a 20k x 2048 float32 bank, 1024 queries,
weighted k in {5, 10, 20} (ReSA Table 3 / DINO), majority k = 5 (W-MSE), 1000 classes, the
task's default chunk of 256 queries, one thread on both sides (:mod:`benchmarks.harness`).
The baseline does only the unavoidable work (per chunk: one similarity matmul and
``topk(max k)``); each ratio shows what the norms, deterministic tie-breaking and the vote
cost on top (goal: at most 1.2x for the weighted and the majority protocol; the bank is never
copied, the weighted protocol scales each similarity block by ``1 / |x|`` in place).
``protocol=both`` shares the one matmul and adds a second top-k.

    .venv/bin/python -m benchmarks.knn [--bank 20000] [--queries 1024] [--dim 2048] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.harness import compare, print_conditions
from downstream.tasks.knn import knn_metrics

KS = [5, 10, 20]  # downstream.tasks.knn SCHEMA "ks"
MAJORITY_KS = [5]  # downstream.tasks.knn SCHEMA "majority_ks"


def bare_matmul_topk(bank: torch.Tensor, queries: torch.Tensor, k: int, chunk: int) -> None:
    for start in range(0, len(queries), chunk):
        torch.topk(queries[start : start + chunk] @ bank.T, k, dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print_conditions(args.threads)
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(args.bank, args.dim, generator=generator)
    queries = torch.randn(args.queries, args.dim, generator=generator)
    bank_labels = torch.randint(0, args.classes, (args.bank,), generator=generator)
    query_labels = torch.randint(0, args.classes, (args.queries,), generator=generator)
    params = {"bank": args.bank, "queries": args.queries, "dim": args.dim, "classes": args.classes,
              "chunk": args.chunk, "ks": KS, "majority_ks": MAJORITY_KS}
    protocols = {"weighted": (KS, []), "majority": ([], MAJORITY_KS), "both": (KS, MAJORITY_KS)}
    for protocol, (ks, majority_ks) in protocols.items():
        compare(
            "knn", f"k-NN protocol={protocol}, bank {args.bank}x{args.dim}, {args.queries} queries",
            lambda ks=ks, majority_ks=majority_ks: knn_metrics(
                bank, bank_labels, queries, query_labels, args.classes, ks=ks, majority_ks=majority_ks,
                chunk_size=args.chunk),
            lambda ks=ks, majority_ks=majority_ks: bare_matmul_topk(bank, queries, max(ks + majority_ks), args.chunk),
            threads=args.threads, repeats=args.repeats, ratio="ours/reference",
            goal="<= 1.2x" if protocol != "both" else "one matmul (no goal set)", params={**params,
                                                                                         "protocol": protocol},
        )


if __name__ == "__main__":
    main()
