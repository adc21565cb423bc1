"""Input-pipeline speed: ReSA's per-sample PIL views (DataLoader-worker path) in images/s per CPU core.

Decodes real JPEG photographs available offline (foolbox 3.3.4's twenty 512 x 512 ImageNet
samples, installed by ``make install-engines``, plus scikit-learn's two 640 x 427 photographs)
from bytes in memory and makes every view of the ImageNet presets with
:class:`pretrain.data.pil_views.ViewMaker` (``configs/pretrain/imagenet_resnet50_bs256.yaml``:
2 x 224 px; ``imagenet_vit_small_multicrop.yaml``: 2 x 224 + 6 x 96 px), one thread, as one
DataLoader worker does. The reference is torchvision ``transforms.v2`` doing the same
augmentations (RandomResizedCrop, flip, ColorJitter p 0.8, grayscale, blur, solarisation) on
``torchvision.io.decode_jpeg`` uint8 tensors. Both sides end at uint8 view tensors: the
normalisation runs on whole batches after the transfer to the training device
(``pretrain.data.loader.LoaderBatches.epoch``), not in the DataLoader workers. Prints images/s per core for
both (by wall time and by process CPU time: on a loaded machine the CPU time is the figure
that says what a dedicated core would do), their ratio, and how many cores per GPU each needs
to feed ResNet-50 at 278 images/s per A100: ReSA paper Table 4 (ResNet-50, batch 256, 100
epochs of ImageNet's 1.28M images in ~128 A100-hours on 8 GPUs ~ 1.28M * 100 / (16 h * 3600 s * 8) ~ 278 images/s/GPU).

    .venv/bin/python -m benchmarks.input_pipeline [--passes 2] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
from pathlib import Path

import torch
import torchvision
from PIL import Image
from torchvision.transforms import v2

from benchmarks.harness import append_result, compare, print_conditions
from pretrain.config import resolve
from pretrain.data.pil_views import ViewMaker
from pretrain.data.views import ViewParams, view_list
from resa_core.errors import UserError, run_cli

A100_IMAGES_PER_S = 278  # ReSA Table 4 (see the module docstring)
CORES_PER_GPU_BUDGET = 8  # a typical 8-GPU node with 64 cores
PRESETS = {
    "2x224": "configs/pretrain/imagenet_resnet50_bs256.yaml",
    "2x224+6x96": "configs/pretrain/imagenet_vit_small_multicrop.yaml",
}


def offline_jpegs() -> list[bytes]:
    """foolbox's ImageNet sample JPEGs and scikit-learn's photographs, as encoded bytes."""
    import sklearn

    paths = sorted(Path(sklearn.__file__).parent.glob("datasets/images/*.jpg"))
    foolbox = importlib.util.find_spec("foolbox")  # installed --no-deps: located, never imported
    if foolbox is None:
        raise UserError("benchmarks.input_pipeline reads foolbox's ImageNet samples: "
                        "pip install --no-deps foolbox==3.3.4 (make install-engines)")
    paths += sorted((Path(foolbox.origin).parent / "data").glob("imagenet_*.jpg"))
    return [path.read_bytes() for path in paths]


def torchvision_views(views: list[ViewParams]) -> list[v2.Compose]:
    """The same augmentations with torchvision transforms.v2 on uint8 image tensors (uint8 out)."""
    out = []
    for p in views:
        blur = 2 * round(3 * 2.0) + 1  # kernel covering 3 sigma at the largest sigma (2.0)
        out.append(v2.Compose([
            v2.RandomResizedCrop(p.crop_size, scale=(p.min_scale, p.max_scale), antialias=True),
            v2.RandomApply([v2.ColorJitter(p.brightness, p.contrast, p.saturation, p.hue)], p=p.color_jitter_prob),
            v2.RandomGrayscale(p.grayscale_prob),
            v2.RandomApply([v2.GaussianBlur(blur, sigma=(0.1, 2.0))], p=p.blur_prob),
            v2.RandomSolarize(128, p=p.solarization_prob),
            v2.RandomHorizontalFlip(p.flip_prob),
        ]))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=2, help="passes over the images per timed repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    print_conditions(args.threads)
    jpegs = offline_jpegs()
    encoded = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in jpegs]
    count = args.passes * len(jpegs)
    for name, preset in PRESETS.items():
        config = resolve(preset, [])
        views = view_list(config)
        maker = ViewMaker(views, seed=0)
        references = torchvision_views(views)

        def ours(maker=maker):
            for epoch in range(args.passes):
                for index, data in enumerate(jpegs):
                    maker(epoch, index, Image.open(io.BytesIO(data)))

        def reference(references=references):
            for _ in range(args.passes):
                for data in encoded:
                    image = torchvision.io.decode_jpeg(data, mode=torchvision.io.ImageReadMode.RGB)
                    [transform(image) for transform in references]

        result = compare("input_pipeline", f"views {name}, {len(jpegs)} real JPEGs x {args.passes} passes", ours,
                         reference, threads=args.threads, repeats=args.repeats, ratio="reference/ours",
                         goal=f"<= {CORES_PER_GPU_BUDGET} cores per GPU at {A100_IMAGES_PER_S} img/s",
                         params={"views": name, "preset": preset, "images": len(jpegs), "passes": args.passes},
                         record=False)
        for clock, suffix in (("wall", "_s_median"), ("CPU", "_cpu_s")):
            ours_s, reference_s = (_median(result, side, suffix) for side in ("ours", "reference"))
            ours_rate, reference_rate = count / ours_s / args.threads, count / reference_s / args.threads
            print(f"  by {clock} time: ours {ours_rate:.1f} images/s per core -> "
                  f"{A100_IMAGES_PER_S / ours_rate:.1f} cores per GPU; torchvision v2 {reference_rate:.1f} "
                  f"images/s per core -> {A100_IMAGES_PER_S / reference_rate:.1f} cores per GPU "
                  f"(budget {CORES_PER_GPU_BUDGET})")
            result[f"cores_per_gpu_{clock.lower()}"] = {"ours": A100_IMAGES_PER_S / ours_rate,
                                                        "reference": A100_IMAGES_PER_S / reference_rate}
        append_result("input_pipeline", result)


def _median(result: dict, side: str, suffix: str) -> float:
    """The median wall (``_s_median``) or process CPU (``_cpu_s``, a list) seconds of one side."""
    value = result[side + suffix]
    return statistics.median(value) if isinstance(value, list) else value


if __name__ == "__main__":
    run_cli(main)
