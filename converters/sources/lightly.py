"""lightly checkpoints (lightly-ai/lightly): its Lightning examples and its ImageNet benchmarks.

Examples (``examples/pytorch_lightning/byol.py``, ``moco.py``, ``simclr.py``) build
``backbone = nn.Sequential(*list(torchvision_resnet.children())[:-1])`` and, for momentum methods,
``backbone_momentum = copy.deepcopy(backbone)``: keys ``state_dict/backbone.0.weight``,
``backbone.4.0.conv1.weight``, ``backbone_momentum...``.

Benchmarks (``benchmarks/imagenet/resnet50/*.py``) keep the torchvision ResNet itself
(``resnet.fc = Identity()``; keys ``backbone.conv1.weight``) next to an ``online_classifier``, and
name the second encoder by its role: ``byol.py`` ``teacher_backbone`` (the EMA of ``backbone``),
``mocov2.py`` ``key_backbone`` (the EMA key encoder), and ``dino.py`` ``student_backbone``, where
``backbone`` itself is the EMA teacher (``update_momentum(self.student_backbone, self.backbone)``).
Which prefix is which encoder therefore depends on which partner is present; each case is a
:class:`Layout` below. Defaults follow docs/converters.md: the EMA encoder (BYOL's teacher,
DINO's teacher), except MoCo's query encoder ``backbone``, as for facebookresearch/moco files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from converters.sources import register_source
from converters.sources.base import Source, SourceWeights
from converters.sources.layout import Layout, Part, dig, has_prefix, read_layout
from converters.sources.renames import from_resnet_children

_WEIGHTS = (("state_dict",),)
# Prefixes that only lightly's benchmark modules have (every one holds an OnlineLinearClassifier).
BENCHMARK_PREFIXES = ("teacher_backbone.", "key_backbone.", "student_backbone.", "online_classifier.")


def _layout(encoders: dict, default: tuple) -> Layout:
    return Layout(
        name="lightly", description="", encoders=encoders, default=default, detect=_detect,
        rename=from_resnet_children,
    )


def _example(obj: Any) -> bool:
    return "backbone.0.weight" in (dig(obj, ("state_dict",)) or {})


def _benchmark(obj: Any) -> bool:
    return any(has_prefix(obj, ("state_dict",), prefix) for prefix in BENCHMARK_PREFIXES)


def _detect(obj: Any) -> bool:
    return isinstance(obj, Mapping) and (_example(obj) or _benchmark(obj))


EXAMPLES = _layout(
    {"momentum": Part(_WEIGHTS, ("backbone_momentum.",)), "online": Part(_WEIGHTS, ("backbone.",))},
    ("momentum", "online"),
)
BYOL = _layout(
    {"momentum": Part(_WEIGHTS, ("teacher_backbone.",)), "online": Part(_WEIGHTS, ("backbone.",))},
    ("momentum", "online"),
)
MOCO = _layout(
    {"momentum": Part(_WEIGHTS, ("key_backbone.",)), "online": Part(_WEIGHTS, ("backbone.",))},
    ("online", "momentum"),
)
DINO = _layout(
    {"teacher": Part(_WEIGHTS, ("backbone.",)), "student": Part(_WEIGHTS, ("student_backbone.",))},
    ("teacher", "student"),
)
SINGLE = _layout({None: Part(_WEIGHTS, ("backbone.",))}, (None,))


def _which(obj: Any) -> Layout:
    for prefix, layout in (
        ("student_backbone.", DINO), ("teacher_backbone.", BYOL), ("key_backbone.", MOCO),
        ("backbone_momentum.", EXAMPLES),
    ):
        if has_prefix(obj, ("state_dict",), prefix):
            return layout
    return EXAMPLES if _example(obj) else SINGLE


def _read(path: Path, obj: Any, encoder: str | None) -> SourceWeights:
    return read_layout(_which(obj), path, obj, encoder)


register_source(Source(
    "lightly",
    "lightly Lightning checkpoint: examples (backbone.N., backbone_momentum.) or benchmarks "
    "(backbone. + teacher_backbone. / key_backbone. / student_backbone.)",
    _detect, _read,
))
