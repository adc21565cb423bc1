"""Batches of views for one epoch, from any step on, identical for any worker count or rank split.

The sample order of epoch e is a permutation seeded by ``(seed, e)``; global batch b is
``order[b*B:(b+1)*B]`` and rank r of W takes its r-th contiguous shard of B/W samples, so the
ranks' shards concatenated in rank order are the single-process batch (what the DDP
equivalence relies on). Which source a dataset gets depends on the dataset only, never on
``data.num_workers``, so changing the worker count never changes the pixels:

* :class:`InMemoryBatches` (in-memory datasets: Fashion-MNIST arrays): batched tensor
  augmentation (:func:`pretrain.data.views.augment_batch`), the demo's fast path; with
  workers, each worker augments whole batches (the same call on the same keys);
* :class:`LoaderBatches` (file-backed catalog datasets): a ``DataLoader`` whose batch sampler
  yields ``(epoch, index)`` pairs; the dataset derives each view's randomness from them
  (:class:`pretrain.data.pil_views.ViewMaker`), in the main process when there are no workers;
  image files reach the view maker opened but not decoded (``LabelledImages.open_image``), so
  JPEGs are decoded at reduced size; workers make uint8 views, normalised per batch after the
  transfer to the training device (``epoch(..., device)``).

The two sources draw the same parameters for a given ``(seed, epoch, index, view)`` but are
not interchangeable pixel for pixel: the PIL path resamples with PIL and rounds to uint8
after every operation, the batched path stays in float (``roi_align`` crops).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from pretrain.data.pil_views import ViewMaker, normalize_views
from pretrain.data.views import ViewParams, augment_batch
from resa_core.data.catalog import LabelledImages
from resa_core.data.fashion_mnist import ImageArray
from resa_core.data.tensors import normalize, to_float_rgb


def rank_batches(num_samples: int, global_batch: int, seed: int, epoch: int, start: int, rank: int,
                 world: int) -> Iterator[np.ndarray]:
    """Positions (into the dataset) of this rank's shard of each global batch from ``start`` on."""
    order = np.random.default_rng((seed, epoch)).permutation(num_samples)
    local = global_batch // world
    for b in range(start, num_samples // global_batch):
        yield order[b * global_batch + rank * local: b * global_batch + (rank + 1) * local]


class _BatchAugmenter(torch.utils.data.Dataset):
    """Key ``(epoch, positions)`` -> the batch's normalised views (one ``augment_batch`` call per view)."""

    def __init__(self, data: ImageArray, views: list[ViewParams], seed: int, stats: str):
        self.data, self.views, self.seed, self.stats = data, views, seed, stats

    def __len__(self) -> int:
        return len(self.data.labels)

    def __getitem__(self, key: tuple[int, np.ndarray]) -> list[torch.Tensor]:
        epoch, batch = key
        images, indices = to_float_rgb(self.data.images[batch]), self.data.indices[batch]
        return [normalize(augment_batch(images, indices, params, self.seed, epoch, v), self.stats)
                for v, params in enumerate(self.views)]


class _BatchKeys:
    """Sampler of whole-batch keys ``(epoch, positions)`` for a ``DataLoader`` without automatic batching."""

    def __init__(self, num_samples: int, global_batch: int, seed: int, epoch: int, start: int, rank: int,
                 world: int):
        self.args = (num_samples, global_batch, seed, epoch, start, rank, world)
        self.length = num_samples // global_batch - start

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        return ((self.args[3], batch) for batch in rank_batches(*self.args))


class InMemoryBatches:
    def __init__(self, data: ImageArray, views: list[ViewParams], seed: int, stats: str, global_batch: int,
                 num_workers: int = 0, rank: int = 0, world: int = 1, pin_memory: bool = False):
        self.dataset = _BatchAugmenter(data, views, seed, stats)
        self.seed, self.global_batch, self.num_workers = seed, global_batch, num_workers
        self.rank, self.world, self.pin_memory = rank, world, pin_memory

    def __len__(self) -> int:
        return len(self.dataset)

    def epoch(self, epoch: int, start: int, device: torch.device | None = None) -> Iterator[list[torch.Tensor]]:
        """The epoch's normalised float batches from step ``start`` on (``device``: unused, the
        augmenter normalises in float already; the same signature as :meth:`LoaderBatches.epoch`)."""
        keys = _BatchKeys(len(self), self.global_batch, self.seed, epoch, start, self.rank, self.world)
        if self.num_workers == 0:
            yield from map(self.dataset.__getitem__, keys)
            return
        # batch_size=None: each key is one batch, augmented whole in a worker and passed through uncollated
        yield from torch.utils.data.DataLoader(self.dataset, batch_size=None, sampler=keys,
                                               num_workers=self.num_workers, pin_memory=self.pin_memory,
                                               worker_init_fn=_ignore_stop_signals)


class _ViewDataset(torch.utils.data.Dataset):
    def __init__(self, data: LabelledImages, make_views: ViewMaker):
        self.data, self.make_views = data, make_views

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: tuple[int, int]) -> list[torch.Tensor]:
        epoch, position = key
        # the file is decoded inside the view maker, at the smallest JPEG scale its crops allow
        with self.data.open_image(position) as image:
            return self.make_views(epoch, int(self.data.indices[position]), image)


class _EpochSampler(_BatchKeys):
    """The same batches as :class:`_BatchKeys`, as lists of per-sample ``(epoch, position)`` keys."""

    def __iter__(self):
        epoch = self.args[3]
        for batch in rank_batches(*self.args):
            yield [(epoch, int(position)) for position in batch]


def _ignore_stop_signals(worker_id: int) -> None:
    """Workers leave SIGTERM/SIGUSR2 to the main process, which stops at a step boundary."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)


class LoaderBatches:
    def __init__(self, data: LabelledImages, views: list[ViewParams], seed: int, stats: str, global_batch: int,
                 num_workers: int, rank: int = 0, world: int = 1, pin_memory: bool = False):
        self.dataset = _ViewDataset(data, ViewMaker(views, seed))
        self.stats, self.seed, self.global_batch, self.num_workers = stats, seed, global_batch, num_workers
        self.rank, self.world, self.pin_memory = rank, world, pin_memory

    def __len__(self) -> int:
        return len(self.dataset)

    def epoch(self, epoch: int, start: int, device: torch.device | None = None) -> Iterator[list[torch.Tensor]]:
        """The epoch's float32 normalised batches from step ``start`` on, on ``device`` (default CPU).

        The workers collate uint8 views; each batch moves to ``device`` as uint8 and is normalised
        there (:func:`pretrain.data.pil_views.normalize_views`), off the workers' cores.
        """
        sampler = _EpochSampler(len(self), self.global_batch, self.seed, epoch, start, self.rank, self.world)
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.num_workers,
                                             pin_memory=self.pin_memory, worker_init_fn=_ignore_stop_signals)
        for views in loader:
            yield [normalize_views(view if device is None else view.to(device, non_blocking=True), self.stats)
                   for view in views]
