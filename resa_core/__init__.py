"""Foundation shared by every stage: strict configs, atomic files, clear errors, datasets.

The five stages (pretrain, converters, downstream, slurm, results) may all import this
package; it imports none of them, so the stage arrows of DESIGN.md stay one-way.
"""
