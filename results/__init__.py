"""Result records -> paper-style tables (Markdown, CSV) and plots.

This stage only reads the result records that ``downstream`` writes (docs/contracts.md §3);
of the other stages it imports only ``downstream.record``, the module that defines that record
(its protocol keys, for layout validation and ``python -m results migrate``). A table's layout
is data: a YAML file under ``results/tables/`` says which task/dataset/metric fills which column.
"""
