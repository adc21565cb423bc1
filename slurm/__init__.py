"""Orchestration stage: pipeline files -> submitit jobs with dependencies (``python -m slurm``).

It runs the other stages' entry points and never computes anything itself.
"""
