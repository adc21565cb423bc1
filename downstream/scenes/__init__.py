"""Fashion-MNIST scenes in the engines: the ``make-scenes`` command and Detectron2 / MMSeg registration.

The generator itself is :mod:`resa_core.data.fmnist_scenes` (no engine needed to write the set).
"""
