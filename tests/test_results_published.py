"""Published numbers (results/published/*.csv) against the papers' text, and tables compared with them.

Every file's shape is fixed here, and every cell is compared with the paper's cell: the paper's
table is parsed from its text (tab- or ``|``-separated cells, the row label first) and each CSV
row must be the paper's row at the same position, with the same label and, column by column,
the same value ('-' = empty). The DSA paper's text is OCR'd: it lost most decimal points, so each
of its rows is the paper's line read as one stream of digits, consumed cell by cell; every digit
of the line must be used (the few cells where the OCR misread a digit are listed with the text
it shows).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from test_results import PNG_MAGIC, write_record

from resa_core.errors import UserError
from results.layout import load_layout
from results.published import PUBLISHED_DIR, read_published
from results.table import build_table

# The papers are not shipped with the repository: beside it (shared/papers/), or where $RESA_PAPERS says.
PAPERS = Path(os.environ.get("RESA_PAPERS") or Path(__file__).resolve().parents[2] / "shared" / "papers")
PAPER_FILES = {"resa": "resa-clustering-properties-of-ssl-icml2025.md",
               "mira": "mira-mutual-information-regularized-assignment-neurips2022.md",
               "dsa": "dsa-dynamic-semantic-adjuster.md"}
SHAPES = {  # (rows, columns after the row label)
    "resa_table1": (12, 6), "resa_table2": (17, 3), "resa_table3": (5, 2), "resa_table5": (11, 6),
    "resa_table6": (6, 16), "resa_table7": (6, 4), "resa_table10": (7, 4),
    "mira_table3": (6, 3), "mira_table4": (6, 4), "mira_table5": (8, 12), "mira_table7": (6, 7),
    "dsa_table4": (17, 8), "dsa_table6": (13, 12), "dsa_table7": (17, 12),
}
CAPTIONS = {  # the line that opens each table in the paper's text
    **{f"resa_table{n}": f"Table {n}." for n in (1, 2, 3, 5, 6, 7, 10)},
    **{f"mira_table{n}": f"Table {n}:" for n in (3, 4, 5, 7)},
    "dsa_table4": "TABLE IV", "dsa_table6": "TABLE VI", "dsa_table7": "TABLE VII",
}
SPOT_CHECKS = [  # (file, row, column, value) read off the paper by eye
    ("resa_table1", "ReSA", "CIFAR-10 k-nn", 93.02), ("resa_table1", "INTL", "ImageNet-100 linear", 81.68),
    ("resa_table2", "ReSA (batch 1024)", "800 ep", 75.2), ("resa_table3", "DINO", "k-nn", 67.9),
    ("resa_table5", "ReSA", "seg AP75", 38.4), ("resa_table6", "DINO†", "Flowers-102 k=5", 84.8),
    ("resa_table7", "ReSA", "coarse k-nn", 78.8), ("resa_table10", "SwAV†", "top-1 10%", 70.2),
    ("mira_table3", "MIRA", "1%", 47.8), ("mira_table4", "BarlowTwins", "1% top-5", 79.2),
    ("mira_table5", "MIRA", "Aircraft", 59.06), ("mira_table7", "SwAV", "ImageNet-100 top-1", 77.83),
    ("dsa_table4", "BYOL + DSA", "1% top-1", 57.5), ("dsa_table6", "SwAV + DSA", "CUB200 5-way 1-shot", 49.36),
    ("dsa_table7", "MoCo + DSA", "COCO det AP", 40.8),
]
OCR_TEXT = {  # cells whose text the OCR misread: the digits the paper's text shows there
    ("dsa_table7", "SimCLR + DSA", "VOC07 AP50"): "717.5",  # 77.5
    # a '±' read as a digit, in front of the ± cell
    ("dsa_table4", "MoCo", "1% top-5 ±"): "4 0.2", ("dsa_table4", "Barlow Twins", "1% top-5 ±"): "4 0.1",
    ("dsa_table4", "RELIC v2", "10% top-1 ±"): "4 0.2", ("dsa_table4", "VICRegL", "10% top-5 ±"): "1 0.2",
}
OCR_LABELS = {  # ReSA Table 2's row labels as the paper's text misreads them
    "SimCI D": "SimCLR", "SHILLK": "SimCLR", "MaCaV2": "MoCoV3", "WIOCO V S": "MoCoV3", "ShinShann": "SimSiam",
    "INTI": "INTL", "INIL": "INTL", "DoSA": "ReSA", "Kesa": "ReSA",
}
MISSING_IN_PAPER = {("resa_table2", "SwAV (batch 256)", "800 ep"), ("resa_table2", "MEC (batch 256)", "200 ep")}
MARKUP = re.compile(r"</?(?:u|b|i|sup|sub)>|\*\*")
VALUE = re.compile(r"-|\d+(?:\.\d+)?|R\d+")  # a number, '-' (not reported) or an architecture (R18)


def paper_lines(name: str) -> list[str]:
    if not PAPERS.is_dir():
        pytest.skip(f"the papers' text is not beside the project ({PAPERS}); set RESA_PAPERS")
    return (PAPERS / PAPER_FILES[name.split("_")[0]]).read_text(encoding="utf-8").splitlines()


def table_block(name: str) -> list[str]:
    """The paper's lines from the table's caption to the next caption."""
    lines = paper_lines(name)
    caption = CAPTIONS[name]
    (start,) = [i for i, line in enumerate(lines) if line.strip() == caption or line.startswith(caption + " ")]
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"\s*(Table \d+[.:]|TABLE [IVX]+$)", lines[i])),
               len(lines))
    return lines[start + 1:end]


def paper_label(text: str) -> str:
    """A paper's row label without citations, markup or '(ours)'; LaTeX dagger as '†'; OCR misreadings fixed."""
    text = re.sub(r"\$\\mathrm\{(\w+)\}\^\\dagger\$", r"\1†", MARKUP.sub("", text))
    text = re.sub(r"\(.*?\)|\[.*?\]", "", text).strip()
    return OCR_LABELS.get(text, text)


def same_label(ours: str, paper: str) -> bool:
    def key(text):
        return re.sub(r"[^a-z0-9†]", "", text.lower())

    return key(re.sub(r" \(batch \d+\)$", "", ours)) == key(paper)


def paper_rows(name: str) -> list[tuple[str, list[str]]]:
    """(label, cells) of every row of the tab- or '|'-separated table whose cells are all values.

    The table is the first run of such lines after the caption; the first other text ends it.
    """
    rows, started = [], False
    for line in table_block(name):
        if line.startswith("|"):
            cells = [MARKUP.sub("", cell).strip() for cell in line.strip().strip("|").split("|")]
        elif "\t" in line:
            cells = [MARKUP.sub("", cell).strip() for cell in line.rstrip("\t").split("\t")]
        elif started and line.strip():
            break
        else:
            continue
        started = True
        label, values = cells[0], cells[1:]
        header = re.search(r"th[oa]d$|^Classifier$", label)
        if label and not header and values and all(VALUE.fullmatch(value) for value in values):
            rows.append((paper_label(label), values))
    return rows


def same_cell(ours: str, paper: str) -> bool:
    """'' for the paper's '-'; numbers equal as decimals (73.90 == 73.9, 90.7 != 90.74); other text exact."""
    if paper == "-":
        return ours == ""
    if re.fullmatch(r"\d+(\.\d+)?", paper) and re.fullmatch(r"\d+(\.\d+)?", ours):
        return Decimal(ours) == Decimal(paper)
    return ours == paper


def published_strings(name: str) -> pd.DataFrame:
    return pd.read_csv(PUBLISHED_DIR / f"{name}.csv", skiprows=1, index_col=0, dtype=str, keep_default_na=False)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_published_file_has_its_shape_caption_and_source(name):
    published = read_published(f"{name}.csv")
    assert published.table.shape == SHAPES[name]
    paper, table = name.split("_table")
    assert published.caption.lower().startswith(f"{paper} table ")
    assert published.source.startswith(f"shared/papers/{PAPER_FILES[paper]}")


@pytest.mark.parametrize("name", sorted(name for name in SHAPES if not name.startswith("dsa")))
def test_every_published_cell_is_the_paper_cell_at_its_row_and_column(name):
    table, rows = published_strings(name), paper_rows(name)
    if name == "resa_table3":  # printed transposed: the paper's rows are the classifiers, its columns the methods
        assert [label for label, _ in rows] == list(table.columns)
        for column, values in rows:
            assert len(values) == len(table)
            for row, paper in zip(table.index, values, strict=True):
                assert same_cell(table.at[row, column], paper), (name, row, column, table.at[row, column], paper)
        return
    assert len(rows) == len(table), f"{name}: the paper has {len(rows)} rows, the CSV {len(table)}"
    for (label, values), (row, cells) in zip(rows, table.iterrows(), strict=True):
        assert same_label(row, label), f"{name}: CSV row {row!r} is the paper's row {label!r}"
        if name == "resa_table2":  # the paper's first column is the batch size, in the CSV's row label
            batch, values = values[0], values[1:]
            assert row.endswith(f"(batch {batch})"), (name, row, batch)
        assert len(values) == len(cells), f"{name}: row {row!r} has {len(cells)} cells, the paper {len(values)}"
        for column, paper in zip(cells.index, values, strict=True):
            assert same_cell(cells[column], paper), f"{name}: {row!r} / {column!r}: CSV {cells[column]!r}, " \
                                                    f"paper {paper!r}"


def ocr_digits(line: str, label: str) -> str | None:
    """The digits of the DSA paper's line for row ``label`` (citations and OCR'd '±' dropped), or None."""
    text = re.sub(r"\[\d*\]*", "", line).strip()
    if not re.match(re.escape(label) + r"\s+\d", text):
        return None
    rest = re.sub(r"(?<=\s)4\+", "±", text[len(label):])  # '4+' standing alone is the OCR's '±'
    return re.sub(r"\D", "", rest)


@pytest.mark.parametrize("name", sorted(name for name in SHAPES if name.startswith("dsa")))
def test_every_published_cell_is_the_next_digits_of_its_ocr_row(name):
    table, block = published_strings(name), table_block(name)
    for row, cells in table.iterrows():
        streams = [digits for digits in (ocr_digits(line, row) for line in block) if digits is not None]
        assert len(streams) == 1, f"{name}: row {row!r} is on {len(streams)} lines of the paper's table"
        stream = streams[0]
        for column, text in cells.items():
            digits = re.sub(r"\D", "", OCR_TEXT.get((name, row, column), text))
            assert digits and stream.startswith(digits), f"{name}: {row!r} / {column!r}: CSV {text!r}, " \
                                                         f"the paper's digits go on {stream!r}"
            stream = stream[len(digits):]
        assert stream == "", f"{name}: row {row!r}: the paper's line has more cells ({stream!r} left)"


def test_spot_checked_cells_and_gaps():
    for name, row, column, value in SPOT_CHECKS:
        assert read_published(f"{name}.csv").value(row, column) == pytest.approx(value), (name, row, column)
    for name, row, column in MISSING_IN_PAPER:
        assert read_published(f"{name}.csv").value(row, column) is None


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_paper_layout_loads_with_all_published_rows(name):
    layout = load_layout(name)
    labels = [layout.published_row(row) for row in layout.rows]
    assert labels[:len(layout.published.table)] == list(layout.published.table.index)
    assert all(column.published in layout.published.table.columns for column in layout.columns)


def test_table_shows_ours_beside_the_paper_with_the_difference(tmp_path):
    write_record(tmp_path, "linear", "resa", 0, {"top1": 93.0, "top5": 99.0}, dataset="cifar10")
    write_record(tmp_path, "linear", "resa", 1, {"top1": 94.0, "top5": 99.0}, dataset="cifar10")
    write_record(tmp_path, "knn", "resa", 0, {"top1_majority_k5": 92.0}, dataset="cifar10")
    output = build_table(tmp_path, "resa_table1", tmp_path / "out")
    lines = [line for line in output.markdown.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| backbone | CIFAR-10 linear | paper | Δ | CIFAR-10 k-nn | paper | Δ |")
    resa = next(line for line in lines if line.startswith("| ReSA [resa] |"))
    assert "| 93.50 ± 0.71 | 93.53 | -0.03 | 92.00 (n=1) | 93.02 | -1.02 |" in resa
    simclr = next(line for line in lines if line.startswith("| SimCLR |"))
    assert simclr.count("– [") == 6 and "| 90.74 |" in simclr
    assert len(lines) == 2 + 12  # header, rule, every published row
    csv = pd.read_csv(tmp_path / "out" / "resa_table1.csv")
    cell = csv[(csv["row"] == "resa") & (csv["column"] == "CIFAR-10 linear")].iloc[0]
    assert cell["published"] == pytest.approx(93.53) and cell["delta"] == pytest.approx(-0.03)
    assert {"code_version", "config_hash", "backbone_sha256"} <= set(csv.columns)
    tex = (tmp_path / "out" / "resa_table1.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"ReSA [resa] & 93.50 $\pm$ 0.71 & 93.53 & -0.03" in tex


def test_protocol_and_epoch_filters_pick_their_records(tmp_path):
    """1 % / 10 % and 20 / 50 epochs of one backbone and seed are four records; each column takes its own."""
    for subset, shift in (("1percent", 0.0), ("10percent", 10.0)):
        for epochs in (20, 50):
            write_record(tmp_path, "lowshot", "resa", 0, {"top1": 50.0 + shift + epochs / 100, "top5": 70.0 + shift},
                         dataset="imagenet", protocol={"label_subset": subset, "epochs": epochs})
    assert len(list((tmp_path / "records").rglob("seed0.json"))) == 4  # nothing overwritten
    resa = body_line(build_table(tmp_path, "resa_table10", tmp_path / "out").markdown, "| ReSA [resa] |")
    assert resa.startswith("| ReSA [resa] | 50.2 | 56.4 | -6.2 | 60.2 | 70.4 | -10.2 | 70.0 | 81.0 | -11.0 | 80.0 |")
    dsa = body_line(build_table(tmp_path, "dsa_table4", tmp_path / "out").markdown, "| resa |")
    assert dsa.startswith("| resa | 50.5 | – [")  # the 50-epoch runs


def test_a_filtered_out_cell_says_which_key_and_an_ambiguous_one_is_never_averaged(tmp_path):
    write_record(tmp_path, "lowshot", "resa", 0, {"top1": 50.0, "top5": 70.0}, dataset="imagenet",
                 protocol={"label_subset": "1percent", "epochs": 30})
    cells = build_table(tmp_path, "resa_table10", tmp_path / "out").markdown
    assert "filtered out: records exist, none with the column's epochs" in cells
    csv = pd.read_csv(tmp_path / "out" / "resa_table10.csv")
    assert (csv[csv["row"] == "resa"]["status"] == "filtered out").all()
    assert "none with the column's epochs = 20" in csv[csv["row"] == "resa"]["reason"].iloc[0]
    # Table 2's row resa_bs1024 holds backbones of 100 and 800 epochs; a column that selects no length is ambiguous.
    for epochs, value in ((100, 71.0), (800, 75.0)):
        write_record(tmp_path, "linear", "resa_bs1024", 0, {"top1": value}, dataset="imagenet",
                     pretrain_epochs=epochs, sha_of=f"bs1024_ep{epochs}")
    grid = build_table(tmp_path, "resa_table2", tmp_path / "out").markdown
    assert body_line(grid, "| ReSA (batch 1024) [resa_bs1024] |").startswith(
        "| ReSA (batch 1024) [resa_bs1024] | 71.0 | 71.3 | -0.3 | – [")
    assert "| 75.0 | 75.2 | -0.2 |" in body_line(grid, "| ReSA (batch 1024) [resa_bs1024] |")
    layout = tmp_path / "no_epochs.yaml"
    layout.write_text("title: t\nrows: [resa_bs1024]\ncolumns: [{label: x, task: linear, dataset: imagenet, "
                      "metric: top1}]\n")
    ambiguous = build_table(tmp_path, str(layout), tmp_path / "out").markdown
    assert "ambiguous: the matching records differ in pretrain_epochs" in ambiguous
    assert "73.0" not in ambiguous


def body_line(markdown: str, start: str) -> str:
    return next(line for line in markdown.splitlines() if line.startswith(start))


def test_training_curves_plot_and_bad_log(tmp_path):
    log = tmp_path / "resa" / "metrics.jsonl"
    log.parent.mkdir()
    lines = [{"epoch": 0, "step": s, "loss": 5.0 - s / 10, "lr": 0.1} for s in range(1, 11)]
    lines += [{"epoch": e, "step": 10 * e, "epoch_loss": 4.0, "knn_top1": 20.0 + e, "encoding/sc_mean": 0.1 * e,
               "encoding/ari": 0.05 * e, "embedding/ari": 0.02 * e} for e in (1, 2)]
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    out = tmp_path / "curves.png"
    result = subprocess.run([sys.executable, "-m", "results", "plot-curves", str(log), "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(PNG_MAGIC)
    log.write_text('{"epoch": 0, "step": 1}\nnot json\n')
    bad = subprocess.run([sys.executable, "-m", "results", "plot-curves", str(log), "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and "metrics.jsonl:2" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("body, message", [
    ("rows: [{name: resa, published: ReSA-X}]\n"
     "columns: [{label: linear, task: linear, dataset: imagenet, metric: top1}]",
     "maps to 'ReSA-X', which resa_table3 does not have"),
    ("rows: [resa]\ncolumns: [{label: knn, task: knn, dataset: imagenet, metric: top1_k20}]",
     "resa_table3 has no column 'knn'"),
])
def test_a_layout_naming_what_the_published_file_lacks_is_an_error(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"title: bad\npublished: resa_table3.csv\n{body}\n")
    with pytest.raises(UserError, match=message):
        load_layout(str(path))


def test_published_numbers_come_from_the_package_never_from_the_working_directory(tmp_path, monkeypatch):
    write_record(tmp_path, "linear", "resa", 0, {"top1": 93.0, "top5": 99.0}, dataset="cifar10")
    fake = tmp_path / "cwd" / "resa_table1.csv"
    fake.parent.mkdir()
    fake.write_text((PUBLISHED_DIR / "resa_table1.csv").read_text().replace("93.53", "11.11"))
    monkeypatch.chdir(fake.parent)
    resa = body_line(build_table(tmp_path, "resa_table1", tmp_path / "out").markdown, "| ReSA [resa] |")
    assert resa.startswith("| ReSA [resa] | 93.00 | 93.53 | -0.53 |")
    with pytest.raises(UserError, match="is not a file of"):
        read_published(str(fake))


@pytest.mark.parametrize("body, message", [
    ("rows: [{name: resa, published: ReSA}, {name: resa2, published: ReSA}]\n"
     "columns: [{label: linear, task: linear, dataset: imagenet, metric: top1}]",
     "rows mapped to paper rows: 'ReSA' appears twice"),
    ("rows: [resa]\ncolumns: [{label: linear, task: linear, dataset: imagenet, metric: top1, "
     "protocol: {label_subset: 1percent, k: 5}}]",
     "'k' is not a protocol key of task linear"),
])
def test_two_rows_on_one_paper_row_or_an_unknown_protocol_key_is_an_error(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"title: bad\npublished: resa_table3.csv\n{body}\n")
    with pytest.raises(UserError, match=message):
        load_layout(str(path))


def test_a_non_numeric_published_column_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("title: bad\npublished: mira_table7.csv\nrows: [resa]\n"
                    "columns: [{label: a, task: linear, dataset: cifar10, metric: top1, published: arch}]\n")
    result = subprocess.run([sys.executable, "-m", "results", "table", "--run-dir", str(tmp_path), "--layout",
                             str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {path}: columns[0].published: published column 'arch' of mira_table7 is not numeric "
        "(row 'BarlowTwins' holds 'R18')"]
