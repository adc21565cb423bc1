"""Self-supervised pretraining stage: ReSA and its baselines (``python -m pretrain``)."""
