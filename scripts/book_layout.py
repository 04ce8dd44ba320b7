"""What a reader sees of a built page's layout, measured in the browser and judged here: tables that fit the
content column, cells that wrap to at most two lines, figures shown at (nearly) the size they are drawn, and
table cells with neither a raw Python dict nor a float printed with more digits than any measurement here
supports.

:data:`LAYOUT_JS` runs in the page (after every fold is opened, so folded tables and figures are measured too)
and returns plain numbers and texts; :func:`layout_problems` turns them into one line per problem. The
thresholds are module constants so the checker and its tests share them.
"""

from __future__ import annotations

import re

LAYOUT_WIDTH = 1280  # px: the window the reader is assumed to have (issue "Done when": 1280 px)
MIN_SHOWN = 0.8  # a figure shown below this share of its drawn width has text too small to read
MAX_DIGITS = 6  # significant digits a float in a table may show
SLACK = 1.5  # px of rounding allowed when comparing widths
MAX_LINES = 2  # lines a table cell may wrap to at LAYOUT_WIDTH

# Open every fold (<details>, sphinx-design dropdowns, toggled cells), wait for images, then measure.
LAYOUT_JS = """(async () => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  await Promise.all([...document.images].map(i => i.complete ? null :
      new Promise(r => { i.onload = i.onerror = r; })));
  await new Promise(r => setTimeout(r, 200));
  const art = document.querySelector('article') || document.body;
  const cs = getComputedStyle(art);
  const column = art.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  const text = e => e ? e.textContent.replace(/\\s+/g, ' ').trim() : '';
  // lines of a cell: the height of its content (not of the cell: a row is as tall as its tallest cell) over
  // the cell's line height ("normal" taken as 1.2 font sizes)
  const lines = c => {
    const st = getComputedStyle(c), r = document.createRange();
    r.selectNodeContents(c);
    const lh = parseFloat(st.lineHeight) || 1.2 * parseFloat(st.fontSize);
    return Math.round(r.getBoundingClientRect().height / lh);
  };
  const rows = t => [...t.rows].map((tr, i) => ({row: tr.closest('thead') ? 'header' : String(i + 1 -
      t.querySelectorAll('thead tr').length), cells: [...tr.cells].map((c, j) => ({col: j, text: text(c),
      lines: lines(c)}))}));
  const tables = [...art.querySelectorAll('table')].filter(t => !t.closest('.highlight, .linenodiv'))
    .map(t => ({width: t.getBoundingClientRect().width,
                head: text(t.querySelector('th, td')).slice(0, 40),
                caption: text(t.querySelector('caption')).slice(0, 60),
                columns: [...((t.tHead && t.tHead.rows[0]) || t.rows[0] || {cells: []}).cells].map(text),
                rows: rows(t),
                cells: [...t.querySelectorAll('td, th')].map(c => c.textContent.trim())}));
  const figures = [...art.querySelectorAll('img')].filter(i => i.naturalWidth > 0)
    .map(i => ({src: i.getAttribute('src'), drawn: i.naturalWidth, shown: i.getBoundingClientRect().width}));
  return {column, tables, figures};
})()"""

RAW_DICT = re.compile(r"\{\s*['\"][^'\"]*['\"]\s*:")  # {'text': ... or {"a": ...
FLOAT = re.compile(r"(?<![\w.])[-+−]?(\d+\.\d+|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")


def significant_digits(number: str) -> int:
    """Significant digits of a decimal literal as printed: ``0.000440`` has 3, ``12.50`` has 4."""
    mantissa = re.split(r"[eE]", number)[0].lstrip("+-−").replace(".", "")
    return len(mantissa.lstrip("0")) or 1


def cell_problems(cell: str) -> list[str]:
    """Why one table cell's text is raw output: a Python dict, or a float with more than MAX_DIGITS digits."""
    out = ["a raw dict"] if RAW_DICT.search(cell) else []
    out += [f"{m.group(0)} ({significant_digits(m.group(1))} significant digits)" for m in FLOAT.finditer(cell)
            if significant_digits(m.group(1)) > MAX_DIGITS]
    return out


def tall_cells(table: dict) -> list[str]:
    """Every cell of a measured table that wraps to more than MAX_LINES lines: its row (``header`` or the body
    row from 1), its column (the header's text, else its position from 1), its text and its line count."""
    name = table.get("caption") or table["head"]
    columns = table.get("columns", [])
    out = []
    for row in table.get("rows", []):
        for cell in row["cells"]:
            if cell["lines"] > MAX_LINES:
                col = columns[cell["col"]] if cell["col"] < len(columns) and columns[cell["col"]] else cell["col"] + 1
                out.append(f"table '{name}' row {row['row']}, column '{col}': '{cell['text'][:60]}' "
                           f"wraps to {cell['lines']} lines (> {MAX_LINES})")
    return out


def layout_problems(m: dict) -> list[str]:
    """One line per problem in a :data:`LAYOUT_JS` measurement: a table wider than the column, a cell wrapping
    beyond MAX_LINES lines, a figure shown below MIN_SHOWN of its drawn width, a raw cell (the first few of each
    table)."""
    bad = []
    for t in m["tables"]:
        if t["width"] > m["column"] + SLACK:
            bad.append(f"table '{t['head']}' is {t['width']:.0f} px wide in a {m['column']:.0f} px column")
        bad += tall_cells(t)
        raw = [f"'{c[:60]}': {p}" for c in t["cells"] for p in cell_problems(c)]
        bad += [f"table '{t['head']}' cell {r}" for r in raw[:3]]
    for f in m["figures"]:
        if f["shown"] < MIN_SHOWN * f["drawn"]:
            bad.append(f"figure {f['src']} drawn {f['drawn']} px, shown {f['shown']:.0f} px "
                       f"({f['shown'] / f['drawn']:.2f} < {MIN_SHOWN})")
    return bad
