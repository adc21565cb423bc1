"""Dotted ``key=value`` overrides on an mmengine Config, strictly (a typo is an error, not a new key).

Values are parsed as YAML (``lr=0.5`` float, ``crop_size=[64,64]`` list), as ``resa_core.config``
does; a list replacing a tuple becomes a tuple. A path must exist in the resolved config, with one
exception: a new key inside a dict that
has a ``type`` (a registry-built object), whose constructor rejects an unknown argument itself.
List items are addressed by index (``param_scheduler.0.end=100``), as mmengine's
``--cfg-options`` allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from resa_core.errors import UserError


def parse_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        return raw


def _check_path(cfg: Any, key: str, item: str) -> Any:
    """The current value at dotted ``key`` (None for an allowed new key); UserError for a bad path."""
    node = cfg
    *parents, leaf = key.split(".")
    for depth, part in enumerate(parents):
        where = ".".join(parents[: depth + 1])
        if isinstance(node, list | tuple):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"override '{item}': '{where}' is not an index of a {len(node)}-item list")
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise UserError(f"override '{item}': the config has no key '{where}'")
    if isinstance(node, list | tuple):
        if not leaf.isdigit() or int(leaf) >= len(node):
            raise UserError(f"override '{item}': '{leaf}' is not an index of a {len(node)}-item list")
        return node[int(leaf)]
    if not isinstance(node, dict):
        raise UserError(f"override '{item}': '{'.'.join(parents)}' is a value, not a dict")
    if leaf not in node and "type" not in node:
        raise UserError(f"override '{item}': the config has no key '{key}'")
    return node.get(leaf)


def apply_overrides(cfg, overrides: Sequence[str]) -> dict[str, Any]:
    """Check and merge ``overrides`` into ``cfg`` (an mmengine Config); returns them as a flat dict."""
    options: dict[str, Any] = {}
    resolved = cfg.to_dict()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"override '{item}' is not of the form key=value")
        current, value = _check_path(resolved, key, item), parse_value(raw)
        # YAML has no tuples; mmseg transforms insist on them (RandomCrop crop_size)
        options[key] = tuple(value) if isinstance(current, tuple) and isinstance(value, list) else value
    if options:
        cfg.merge_from_dict(options, allow_list_keys=True)
    return options
