"""Strict YAML configs with ``_base_`` inheritance and dotted ``key=value`` overrides.

Each stage declares its full schema as a defaults dict. A config file (and the files it names
in ``_base_``, mmseg-style) and the command-line overrides may only set keys that exist there,
with a value of a compatible type: a typo is an error naming the file and key, never a key
that is silently ignored. Values of overrides are parsed as YAML (``lr=0.5`` is a float,
``ks=[5,10]`` a list), the way Detectron2 and MMSegmentation users already write them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from resa_core.errors import UserError

BASE_KEY = "_base_"


def read_yaml(path: str | Path) -> dict:
    """Read one YAML mapping, resolving ``_base_`` (a path or list of paths relative to it)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    bases = data.pop(BASE_KEY, [])
    merged: dict = {}
    for base in [bases] if isinstance(bases, str) else bases:
        _merge_loose(merged, read_yaml(path.parent / base))
    _merge_loose(merged, data)
    return merged


def _merge_loose(into: dict, update: Mapping) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge_loose(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def merge_strict(schema: Mapping, update: Mapping, source: str, prefix: str = "") -> dict:
    """Return ``schema`` updated by ``update``; unknown keys and type mismatches are errors."""
    result = copy.deepcopy(dict(schema))
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in result:
            known = ", ".join(sorted(map(str, result))) or "none"
            raise UserError(f"{source}: unknown config key '{dotted}' (known keys here: {known})")
        default = result[key]
        if isinstance(default, dict):
            if not isinstance(value, Mapping):
                raise UserError(f"{source}: '{dotted}' must be a mapping, got {value!r}")
            result[key] = merge_strict(default, value, source, prefix=f"{dotted}.")
        else:
            result[key] = _checked_value(default, value, source, dotted)
    return result


_FLOAT_LITERAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _checked_value(default: Any, value: Any, source: str, dotted: str) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        if isinstance(default, bool) and isinstance(value, bool):
            return value
    elif isinstance(default, float) and isinstance(value, (int, float)):
        return float(value)
    elif isinstance(default, float) and isinstance(value, str) and _FLOAT_LITERAL.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads exponents without a dot (1e-4) as strings
    elif isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return list(value)
    elif isinstance(value, type(default)):
        return value
    raise UserError(
        f"{source}: '{dotted}' expects {type(default).__name__} (default {default!r}), got {value!r}"
    )


def parse_overrides(overrides: Sequence[str]) -> dict:
    """Turn ``["a.b=1", "c=x"]`` into ``{"a": {"b": 1}, "c": "x"}``."""
    nested: dict = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"override '{item}' is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override '{item}' conflicts with another override of '{part}'")
        node[leaf] = value
    return nested


def load_config(
    schema: Mapping, path: str | Path | None = None, overrides: Sequence[str] = ()
) -> dict:
    """Resolve schema <- YAML file (with bases) <- overrides, strictly."""
    config = copy.deepcopy(dict(schema))
    if path is not None:
        config = merge_strict(config, read_yaml(path), str(path))
    if overrides:
        config = merge_strict(config, parse_overrides(overrides), "command-line override")
    return config
