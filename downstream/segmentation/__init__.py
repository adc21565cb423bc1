"""Semantic-segmentation transfer in real MMSegmentation (mmengine Runner).

``python -m downstream segmentation --task NAME --weights FILE`` fine-tunes a converted backbone
with one of the mmseg configs under ``configs/segmentation/`` and writes one result record
(docs/contracts.md §3) with ``mIoU``, ``mAcc`` and ``aAcc``. See docs/segmentation.md.

Import mmseg only through :func:`resa_core.mmseg_import.import_mmseg`, which first
registers the pure-PyTorch ``mmcv.ops`` that mmcv-lite lacks.
"""
