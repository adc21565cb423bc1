"""Each task evaluates image files in its reference protocol's view (issue 15 item 12).

logreg-transfer: linusericsson/ssl-transfer ``linear.py`` (``get_train_valid_loader`` /
``get_test_loader`` at ``--image-size 224``): Resize(224, BICUBIC) + CenterCrop(224).
linear (ImageNet protocol) and lowshot: winci-ai/resa ``eval_linear.py`` lines 73-74:
Resize(256) with torchvision's default bilinear interpolation + CenterCrop(224).
k-NN keeps DINO's ``eval_knn.py`` Resize(256, interpolation=3 = bicubic).
"""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from downstream.config import resolve_config
from downstream.datasets import dataset_spec
from downstream.tasks import task_spec
from downstream.transforms import eval_transform
from resa_core.errors import UserError


def resolved(task: str, dataset: str, *overrides: str) -> dict:
    spec = task_spec(task)
    defaults = spec.dataset_defaults(dataset_spec(dataset))
    return resolve_config(spec.schema, overrides=overrides, dataset_defaults=defaults)


@pytest.mark.parametrize("task, dataset, view", [
    ("logreg-transfer", "pets", (224, 224, "bicubic")),
    ("logreg-transfer", "cifar10", (224, 224, "bicubic")),  # ssl-transfer resizes CIFAR to 224 too
    ("linear", "imagenet", (224, 256, "bilinear")),
    ("lowshot", "imagenet", (224, 256, "bilinear")),
    ("knn", "imagenet", (224, 256, "bicubic")),
])
def test_task_views_follow_their_reference_code(task, dataset, view):
    config = resolved(task, dataset)
    assert (config["image_size"], config["resize_size"], config["resize_interpolation"]) == view


def test_grey_array_datasets_keep_their_own_view():
    assert resolved("logreg-transfer", "fashion_mnist")["image_size"] == 32


def test_overrides_still_win_and_bad_values_are_refused():
    assert resolved("linear", "imagenet", "resize_interpolation=bicubic")["resize_interpolation"] == "bicubic"
    with pytest.raises(UserError, match="resize_interpolation"):
        resolved("linear", "imagenet", "resize_interpolation=nearest")


@pytest.mark.parametrize("name, mode", [("bilinear", transforms.InterpolationMode.BILINEAR),
                                        ("bicubic", transforms.InterpolationMode.BICUBIC)])
def test_eval_transform_resizes_with_the_named_interpolation(name, mode):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    reference = transforms.Compose([transforms.Resize(256, interpolation=mode), transforms.CenterCrop(224),
                                    transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.25,) * 3)])
    ours = eval_transform(224, 256, "imagenet", name)
    mean, std = ours.transforms[-1].mean, ours.transforms[-1].std
    reference.transforms[-1] = transforms.Normalize(mean, std)
    assert torch.equal(ours(image), reference(image))
