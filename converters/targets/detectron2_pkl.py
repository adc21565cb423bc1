"""Write a Detectron2 ``.pkl`` as facebookresearch/moco ``detection/convert-pretrain-to-detectron2.py`` does.

``{"model": {detectron2 name: numpy array}, "__author__": ..., "matching_heuristics": True}``;
``matching_heuristics`` lets Detectron2's checkpointer align the names to its ResNet. We add a
``provenance`` dict, which Detectron2 ignores. Detectron2 picks its pickle loader by the
``.pkl`` suffix, hence the single allowed extension.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from converters.backbone import Backbone
from converters.detectron2_keys import to_detectron2
from converters.engines.detectron2_model import check_detectron2
from converters.provenance import provenance_of
from converters.targets import Target, register_target
from resa_core.atomic import write_atomic

# Protocol 4: readable by every Python 3 Detectron2 install.
PICKLE_PROTOCOL = 4


def write_detectron2(backbone: Backbone, out: Path) -> None:
    model = {to_detectron2(key): tensor.detach().cpu().numpy() for key, tensor in backbone.state_dict.items()}
    payload = {
        "model": model,
        "__author__": backbone.describe(),
        "matching_heuristics": True,
        "provenance": provenance_of(backbone),
    }
    write_atomic(out, lambda handle: pickle.dump(payload, handle, protocol=PICKLE_PROTOCOL))


register_target(
    Target("detectron2", (".pkl",), reader="detectron2", write=write_detectron2, needs_standard_stem=True,
           engine_check=check_detectron2)
)
