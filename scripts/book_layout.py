"""What a reader sees of a built page's layout, measured in the browser and judged here: tables that fit the
content column, figures shown at (nearly) the size they are drawn, and table cells with neither a raw Python
dict nor a float printed with more digits than any measurement here supports.

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
  const tables = [...art.querySelectorAll('table')].filter(t => !t.closest('.highlight, .linenodiv'))
    .map(t => ({width: t.getBoundingClientRect().width,
                head: (t.querySelector('th, td') || {textContent: ''}).textContent.trim().slice(0, 40),
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


def layout_problems(m: dict) -> list[str]:
    """One line per problem in a :data:`LAYOUT_JS` measurement: a table wider than the column, a figure shown
    below MIN_SHOWN of its drawn width, a raw cell (the first few of each table)."""
    bad = []
    for t in m["tables"]:
        if t["width"] > m["column"] + SLACK:
            bad.append(f"table '{t['head']}' is {t['width']:.0f} px wide in a {m['column']:.0f} px column")
        raw = [f"'{c[:60]}': {p}" for c in t["cells"] for p in cell_problems(c)]
        bad += [f"table '{t['head']}' cell {r}" for r in raw[:3]]
    for f in m["figures"]:
        if f["shown"] < MIN_SHOWN * f["drawn"]:
            bad.append(f"figure {f['src']} drawn {f['drawn']} px, shown {f['shown']:.0f} px "
                       f"({f['shown'] / f['drawn']:.2f} < {MIN_SHOWN})")
    return bad
