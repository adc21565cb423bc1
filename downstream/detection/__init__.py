"""Detection and instance-segmentation transfer in Detectron2, by the MoCo protocol.

``python -m downstream detection --task NAME --weights BACKBONE --run-dir RUN [...]`` (see
:mod:`downstream.detection.cli`). Tasks are Detectron2 YAML configs under ``configs/detection/``
(:mod:`downstream.detection.tasks`); weights are read by ``converters`` and handed to Detectron2
as a dict (:mod:`downstream.detection.weights`); each run writes one result record.
"""
