"""Low-shot fine-tuning on a 1% or 10% label subset (ReSA Table 10; DSA Table IV with ``epochs=50``).

ReSA B.3: "we fine-tune the pre-trained ReSA encoder and train a linear classifier for 20 epochs,
using 1% and 10% subsets of ImageNet, following the same splits as SimCLR ... SGD optimizer with
a learning rate of 0.0002 for the encoder and 40 for the classifier, under a batch size of 256,
along with a cosine decay schedule." The ImageNet subsets are the SimCLR lists shipped in
``resa_core/data/lists/``; other datasets use deterministic class-balanced fractions
(``label_subset`` of :mod:`downstream.datasets`). DSA Section IV-D fine-tunes "for 50 epochs":
``--config downstream/presets/lowshot_dsa_table4.yaml``. Weight decay is not stated by either
paper; 0 as in ReSA's linear protocol. Evaluated on the full test role (ImageNet: val).
"""

from __future__ import annotations

from downstream.config import require_positive_int
from downstream.finetune import TrainSpec, train_and_evaluate
from downstream.tasks import Task, TaskContext
from pretrain.models import arch_spec
from resa_core.errors import UserError

SCHEMA = {
    "epochs": 20,  # ReSA Table 10 / B.3 (DSA Table IV: 50)
    "train_batch_size": 256,  # ReSA B.3
    "encoder_lr": 2e-4,  # ReSA B.3
    "head_lr": 40.0,  # ReSA B.3
    "weight_decay": 0.0,  # not stated in ReSA/DSA; 0 as their linear protocol
}


def run(context: TaskContext, config: dict, seed: int) -> dict[str, float]:
    if config["label_subset"] is None:
        raise UserError("lowshot needs label_subset=1percent or label_subset=10percent")
    spec = TrainSpec(
        epochs=require_positive_int(config, "epochs"), batch_size=require_positive_int(config, "train_batch_size"),
        head_lr=config["head_lr"], encoder_lr=config["encoder_lr"], weight_decay=config["weight_decay"],
        schedule="cosine",
    )
    train, test = context.dataset.load("train", config), context.dataset.load("test", config)
    if not hasattr(train, "transform"):
        raise UserError(f"lowshot fine-tunes on image files; dataset '{context.dataset.name}' is array-based")
    family = arch_spec(context.arch).family if context.arch else None
    return train_and_evaluate(context.encoder, family, train, test, spec, config, seed)


# Evaluated as the authors' eval_linear.py (which also runs their 1%/10% fine-tuning, --train_percent):
# Resize(256) bilinear (torchvision's default), CenterCrop(224) (winci-ai/resa eval_linear.py lines 73-74).
IMAGE_VIEW = {"resize_interpolation": "bilinear"}
TASK = Task("lowshot", SCHEMA, ("train", "test"), run, on_images=lambda config: True, image_view=IMAGE_VIEW)
