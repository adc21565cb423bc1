"""Pretraining data: datasets as uint8 arrays and the two augmented views ReSA needs."""
