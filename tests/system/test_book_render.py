"""The layout check of the built book (``scripts/book_layout.py``, run by ``scripts/check_book_render.py
--measure`` and by tests/system/test_book.py on every page): it finds a table wider than the content column, a table
cell that wraps to more than two lines, a figure shown below 0.8 of its drawn width, a raw dict or an over-precise float in a table cell, and passes a page that
has none of these. The judgement is tested on numbers; the measurement on a small page in real Chromium."""

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _script(name: str):
    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


L = _script("book_layout")


def test_significant_digits_as_printed():
    assert [L.significant_digits(s) for s in ("0.000440", "12.50", "0.0004405724506734873", "1.5e-05", "-0.0")] \
        == [3, 4, 16, 2, 1]


def test_cells_with_raw_output_are_named_and_rounded_ones_pass():
    assert L.cell_problems("0.806 ± 0.015") == [] and L.cell_problems("[0.000, +0.056]") == []
    assert L.cell_problems("Python 3.11.4, torch 2.3.1") == []  # versions are not floats
    assert L.cell_problems("{'text': 0.5, 'audio': 0.2}") == ["a raw dict"]
    assert L.cell_problems("lr 0.0004405724506734873") == ["0.0004405724506734873 (16 significant digits)"]
    assert L.cell_problems("−1.2345678") == ["−1.2345678 (8 significant digits)"]


def test_layout_problems_from_a_measurement():
    ok = {"column": 688, "tables": [{"width": 688.4, "head": "Model", "cells": ["0.81"]}],
          "figures": [{"src": "a.png", "drawn": 688, "shown": 688}, {"src": "b.png", "drawn": 800, "shown": 640}]}
    assert L.layout_problems(ok) == []
    bad = {"column": 688, "tables": [{"width": 900, "head": "Model", "cells": ["{'a': 1}"]}],
           "figures": [{"src": "c.png", "drawn": 1320, "shown": 620}]}
    assert L.layout_problems(bad) == ["table 'Model' is 900 px wide in a 688 px column",
                                      "table 'Model' cell '{'a': 1}': a raw dict",
                                      "figure c.png drawn 1320 px, shown 620 px (0.47 < 0.8)"]


def test_cells_beyond_two_lines_are_named_by_table_row_and_column():
    """A cell measured at more than two lines is reported with its table (caption, else first header), its row
    (header or body row from 1), its column's header and its text; a two-line cell passes."""
    cell = lambda col, text, lines: {"col": col, "text": text, "lines": lines}  # noqa: E731
    table = {"width": 600, "head": "Field", "caption": "", "columns": ["Field", "Values"], "cells": [],
             "rows": [{"row": "header", "cells": [cell(0, "Field", 1), cell(1, "Values", 1)]},
                      {"row": "1", "cells": [cell(0, "commit", 1), cell(1, "a, b, c", 15)]},
                      {"row": "2", "cells": [cell(0, "python", 2), cell(1, "3.11", 1)]}]}
    assert L.layout_problems({"column": 688, "tables": [table], "figures": []}) == [
        f"table 'Field' row 1, column 'Values': 'a, b, c' wraps to 15 lines (> {L.MAX_LINES})"]
    captioned = {**table, "caption": "Environment", "columns": []}
    assert L.tall_cells(captioned) == [f"table 'Environment' row 1, column '2': 'a, b, c' wraps to 15 lines "
                                       f"(> {L.MAX_LINES})"]


PAGE = """<!doctype html><html><body style="margin:0"><article style="width:600px;padding:0 20px">
<table><tr><th>Model</th><td>0.806 ± 0.015</td></tr></table>
<table><caption>Tall</caption><thead><tr><th>Name</th><th>Text</th></tr></thead>
<tbody><tr><td>a</td><td style="width:40px">wwww xxxx yyyy zzzz</td></tr>
<tr><td>b</td><td style="width:40px">wwww xxxx</td></tr></tbody></table>
<details><summary>more</summary><table style="width:900px"><tr><th>Wide</th><td>{'text': 0.1234567}</td></tr>
</table></details>
<img src="small.png"><img src="big.png" style="width:100%">
</article></body></html>"""


def test_real_chromium_measures_a_hand_made_page(tmp_path):
    """A folded wide table with a raw dict, a cell four words tall, and a 1000 px image squeezed into the 600 px
    column, are found in Chromium; the narrow table, the two-line cell, the one-line cell beside the tall one (its
    row is as tall, its text is not) and the 300 px image shown at its size are not."""
    import numpy as np
    from PIL import Image

    render = _script("check_book_render")
    binary = render.find_chromium()
    if binary is None:
        pytest.skip("no Chromium binary (apt-get install -y chromium-headless-shell, or set $CHROMIUM)")
    Image.fromarray(np.zeros((10, 300, 3), np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.zeros((10, 1000, 3), np.uint8)).save(tmp_path / "big.png")
    (tmp_path / "page.html").write_text(PAGE)
    with render.Browser(binary) as b:
        b.offline()
        r = render.measure_page(b, tmp_path / "page.html")
    assert r["layout"] == ["table 'Tall' row 1, column 'Text': 'wwww xxxx yyyy zzzz' wraps to 4 lines (> 2)",
                           "table 'Wide' is 900 px wide in a 600 px column",
                           "table 'Wide' cell '{'text': 0.1234567}': a raw dict",
                           "table 'Wide' cell '{'text': 0.1234567}': 0.1234567 (7 significant digits)",
                           "figure big.png drawn 1000 px, shown 600 px (0.60 < 0.8)"]
    assert r["external_requests"] == []


def test_repository_files_are_linked_not_copied(tmp_path, monkeypatch):
    """A file of the repository is linked from the built page: to the repository's web address when the book
    names one, else relative from the page in the HTML directory to where the file lies."""
    from miar.report import provenance as V

    nb = REPO / "results" / "notebooks" / "x+r0f1" / "s1.ipynb"
    monkeypatch.delenv(V.REPO_URL_ENV, raising=False)
    monkeypatch.setenv(V.HTML_ENV, str(REPO / "_build" / "html"))
    assert V.repo_link(nb, "r0f1/<s1>") == '<a href="../../../results/notebooks/x+r0f1/s1.ipynb">r0f1/&lt;s1&gt;</a>'
    monkeypatch.setenv(V.REPO_URL_ENV, "https://example.org/miar/")
    monkeypatch.setenv(V.REPO_BRANCH_ENV, "dev")
    assert V.repo_link(nb, "s1") == '<a href="https://example.org/miar/blob/dev/results/notebooks/x+r0f1/s1.ipynb">s1</a>'


def test_a_script_registered_twice_is_loaded_once():
    """sphinx-thebe registers its inline configuration twice (once named None, once ""); each page keeps one
    copy, in order."""
    from sphinx.builders.html._assets import _JavaScript

    from miar.report.sphinx import _dedupe_scripts

    body = 'const THEBE_JS_URL = "x"'
    ctx = {"script_files": [_JavaScript("a.js"), _JavaScript(None, body=body), _JavaScript("b.js"),
                            _JavaScript("", body=body), _JavaScript("a.js")]}
    _dedupe_scripts(None, "p", "page.html", ctx, None)
    assert [(j.filename, j.attributes.get("body")) for j in ctx["script_files"]] == [("a.js", None), (None, body),
                                                                               ("b.js", None)]
