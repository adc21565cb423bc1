"""The metric vocabulary of docs/contracts.md §3, so a layout cannot name a metric that no task writes.

A typo such as ``top1_k05`` would otherwise render a column of empty cells; checking the
layout against the documented names turns it into an error that names the key.
"""

from __future__ import annotations

import re

METRIC_PATTERNS: dict[str, re.Pattern[str]] = {
    "knn": re.compile(r"top[15]_k[1-9][0-9]*"),
    "linear": re.compile(r"top[15]"),
    "fewshot": re.compile(r"(acc|ci95)_[1-9][0-9]*way[1-9][0-9]*shot"),
}


def is_known_metric(task: str, metric: str) -> bool:
    """True when ``metric`` is a documented metric name of ``task``."""
    pattern = METRIC_PATTERNS.get(task)
    return pattern is not None and pattern.fullmatch(metric) is not None
