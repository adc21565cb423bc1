"""Transfer evaluation stage: one task on one frozen backbone -> one result record.

``python -m downstream {knn,linear,lowshot,fewshot,logreg-transfer,clustering} --dataset D
--weights W --run-dir RUN`` extracts (and caches) frozen features or trains on images, runs the
task and writes the record of docs/contracts.md §3 (user guide: docs/classification.md).
Tasks live in :mod:`downstream.tasks` and datasets in :mod:`downstream.datasets`, both as
registries so that new ones plug in without touching the CLI.
"""
