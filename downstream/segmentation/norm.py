"""SyncBN -> BN for a single process.

The MMSelfSup benchmark configs use ``norm_cfg=dict(type='SyncBN')`` (synchronised over the
GPUs of a distributed run). In one process there is nothing to synchronise with, and PyTorch's
SyncBatchNorm refuses CPU tensors, so the config's SyncBN becomes plain BN, with a warning.
"""

from __future__ import annotations

from typing import Any


def replace_syncbn(node: Any) -> int:
    """Turn every ``dict(type='SyncBN', ...)`` under ``node`` into ``type='BN'``; returns how many."""
    count = 0
    if isinstance(node, dict):
        if node.get("type") == "SyncBN":
            node["type"] = "BN"
            count += 1
        for value in node.values():
            count += replace_syncbn(value)
    elif isinstance(node, list | tuple):
        for value in node:
            count += replace_syncbn(value)
    return count
