"""Render aggregated cells as a LaTeX table (booktabs: ``\\toprule``/``\\midrule``/``\\bottomrule``).

The same texts as the Markdown (:func:`results.markdown.table_texts`), escaped for LaTeX, in a
``table`` float with the caption above and the footnotes (reasons of every "–") below. The first
line names every package the file uses (:data:`PACKAGES`: booktabs for the rules, graphicx for
``\\resizebox``), so a paper can ``\\input`` it after ``\\usepackage{booktabs,graphicx}``.
A text that starts with ``[`` (a footnote mark, a bracketed name) is preceded by ``{}`` so that
after a ``\\\\`` it is never read as the optional skip of ``\\\\[...]``.
"""

from __future__ import annotations

import pandas as pd

from results.layout import Layout
from results.markdown import caption, table_texts

_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
PACKAGES = ("booktabs", "graphicx")
_SYMBOLS = {"±": r"$\pm$", "Δ": r"$\Delta$", "–": "--", "†": r"$^\dagger$", "·": r"$\cdot$"}


def escape(text: str) -> str:
    """Plain text -> LaTeX source showing the same characters (never starting with ``[``)."""
    source = "".join(_SYMBOLS.get(char, _ESCAPES.get(char, char)) for char in str(text))
    return "{}" + source if source.startswith("[") else source


def render_latex(cells: pd.DataFrame, layout: Layout, unshown_backbones: list[str]) -> str:
    header, rows, footnotes = table_texts(cells, layout)
    lines = [
        rf"% Written by python -m results table; needs \usepackage{{{','.join(PACKAGES)}}}.",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{escape(layout.title)}. {escape(caption(cells, layout, unshown_backbones))}}}",
        rf"\label{{tab:{layout.name}}}",
        r"\resizebox{\linewidth}{!}{%",
        rf"\begin{{tabular}}{{l{'r' * (len(header) - 1)}}}",
        r"\toprule",
        " & ".join(escape(text) for text in header) + r" \\",
        r"\midrule",
        *(" & ".join(escape(text) for text in row) + r" \\" for row in rows),
        r"\bottomrule",
        r"\end{tabular}}",
    ]
    if footnotes:
        lines.append(r"\par\footnotesize")
        lines += [escape(f"[{number}] {note}") + r"\\" for number, note in enumerate(footnotes, start=1)]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
