"""Result records -> paper-style tables (Markdown, CSV) and plots.

This stage only reads the result records that ``downstream`` writes (docs/contracts.md §3);
it imports none of the other stages. A table's layout is data: a YAML file under
``results/tables/`` says which task/dataset/metric fills which column.
"""
