"""Checkpoints whose encoders are the keys under a prefix of a (possibly nested) state_dict.

Most SSL codebases save ``model.state_dict()`` of a wrapper module, so an encoder's tensors are
the keys under one prefix (``module.encoder_q.``) next to a second encoder, heads and queues. A
:class:`Layout` says where that dict sits, each encoder's prefix, and which encoder is the
default; :func:`register_layout` turns it into a registered :class:`Source`. The per-codebase
modules (``moco.py``, ``dino.py``, ...) are tables of layouts, each citing the file it follows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converters.backbone import ENCODER_ROLE
from converters.sources import register_source
from converters.sources.base import Source, SourceWeights, renamed_tensors
from resa_core.errors import UserError


@dataclass(frozen=True)
class Part:
    """Where one encoder's tensors are: the first of ``paths`` (keys from the top level; ``()`` is the
    top level itself) holding a key that starts with one of ``prefixes`` (tried in order)."""

    paths: tuple[tuple[str, ...], ...]
    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """A source format made of parts.

    ``encoders`` maps an encoder name (``momentum``/``online``/``teacher``/``student``, or None for
    a file holding one unnamed encoder) to its :class:`Part`; ``default`` is the preference order
    when no encoder is asked for; ``rename`` maps a key with the prefix removed to canonical naming.
    """

    name: str
    description: str
    encoders: Mapping[str | None, Part]
    default: tuple[str | None, ...]
    detect: Callable[[Any], bool]
    rename: Callable[[str], str] = str
    method: str | None = None
    arch_variants: Mapping[str, str] = field(default_factory=dict)  # see Source.arch_variants


def dig(obj: Any, path: tuple[str, ...]) -> Mapping | None:
    """``obj[path[0]][path[1]]...`` when every step is a dict, else None."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj if isinstance(obj, Mapping) else None


def has_prefix(obj: Any, path: tuple[str, ...], prefix: str) -> bool:
    """Whether the dict at ``path`` has a string key starting with ``prefix``."""
    weights = dig(obj, path)
    return weights is not None and any(isinstance(key, str) and key.startswith(prefix) for key in weights)


def _locate(obj: Any, part: Part) -> tuple[tuple[str, ...], Mapping, str] | None:
    for path in part.paths:
        for prefix in part.prefixes:
            if has_prefix(obj, path, prefix):
                return path, dig(obj, path), prefix
    return None


def _group(key: str, depth: int) -> str:
    parts = str(key).split(".")
    return ".".join(parts[:depth]) + ".*" if len(parts) > depth else str(key)


def _tensors(count: int) -> str:
    return f"{count} tensor{'' if count == 1 else 's'}"


def _not_taken(weights: Mapping, prefix: str, located: dict, chosen: str | None) -> tuple[str, ...]:
    """The file's other tensors, grouped by their first prefix components, plus other encoder dicts."""
    depth = max(1, prefix.count("."))
    others = [key for key in weights if not str(key).startswith(prefix)] if prefix else []
    groups = Counter(_group(key, depth) for key in others)
    described = [f"{group} ({_tensors(count)})" for group, count in groups.items()]
    for name, (path, other, _) in located.items():
        if name != chosen and other is not weights:
            described.append(f"{'/'.join(path)} ({name} encoder, {_tensors(len(other))})")
    return tuple(described)


def _pick(layout: Layout, located: dict, encoder: str | None, path: Path) -> str | None:
    if encoder is None:
        return next(name for name in layout.default if name in located)
    named = [name for name in located if name is not None and ENCODER_ROLE[name] == ENCODER_ROLE[encoder]]
    if named:
        return named[0]
    if None in located:  # a single-encoder file: reading reports that no named encoder exists
        return None
    holds = ", ".join(str(name) for name in located)
    raise UserError(f"{path}: this {layout.name} file has no {encoder} encoder (it holds: {holds})")


def read_layout(layout: Layout, path: Path, obj: Any, encoder: str | None) -> SourceWeights:
    """The tensors of the chosen encoder of ``obj``, renamed to canonical keys."""
    located = {name: found for name, part in layout.encoders.items() if (found := _locate(obj, part))}
    if not located:
        wanted = "; ".join(
            f"{' or '.join('/'.join(p) or 'top level' for p in part.paths)}: keys {' or '.join(part.prefixes)}*"
            for part in layout.encoders.values()
        )
        raise UserError(f"{path}: not a {layout.name} checkpoint (expected {wanted})")
    chosen = _pick(layout, located, encoder, path)
    where, weights, prefix = located[chosen]
    label = f"{path}: '{'/'.join(where) or 'top level'}'"
    inside = {key: value for key, value in weights.items() if isinstance(key, str) and key.startswith(prefix)}
    tensors, origin = renamed_tensors(inside, label, rename=lambda key: layout.rename(key[len(prefix):]))
    epoch = obj.get("epoch") if isinstance(obj, Mapping) else None
    return SourceWeights(
        tensors, origin, encoder=chosen, method=layout.method,
        pretrain_epochs=epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None,
        not_taken=_not_taken(weights, prefix, located, chosen),
    )


def register_layout(layout: Layout) -> Layout:
    """Register ``layout`` as a source format named ``layout.name``."""
    register_source(
        Source(layout.name, layout.description, layout.detect,
               lambda path, obj, encoder: read_layout(layout, path, obj, encoder), layout.arch_variants)
    )
    return layout
