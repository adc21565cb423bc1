"""Dataset readers shared by pretraining and evaluation (arrays in, no transforms)."""
