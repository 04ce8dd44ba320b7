"""Numbers and tables as MyST/GitHub markdown: values in each metric's display scale, ``mean ± std``, 95%
intervals, pipe tables, the "not yet run" admonition, and :func:`show` to render markdown from a code cell."""

from __future__ import annotations

import math
import re

import pandas as pd

from miar.report.catalog import METRIC_INFO, NOT_YET_RUN, RERUN


def fmt(value, metric: str) -> str:
    """One value in the metric's display scale ("-" for missing)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    _, scale, dec = METRIC_INFO.get(metric, (metric, 1, 3))
    return f"{value * scale:.{dec}f}"


def fmt_stats(stats: dict | None, metric: str, n: bool = False) -> str:
    """``mean ± std`` (and `` (n=k)``) of a summarize_seeds-like dict; "not yet run" when missing."""
    if not stats or stats.get("mean") is None:
        return NOT_YET_RUN
    out = f"{fmt(stats['mean'], metric)} ± {fmt(stats['std'], metric)}"
    return f"{out} (n={stats['n']})" if n and "n" in stats else out


def fmt_ci(stats: dict | None, metric: str) -> str:
    if not stats or stats.get("mean") is None:
        return NOT_YET_RUN
    lo, hi = stats["ci95"]
    return f"[{fmt(lo, metric)}, {fmt(hi, metric)}]"


def label(metric: str) -> str:
    name, scale, _ = METRIC_INFO.get(metric, (metric, 1, 3))
    return f"{name} (%)" if scale == 100 else name


NUMERIC_CELL = re.compile(r"[\d.,±+\-−\[\]()/%=×≤≥<>~ n]*\d[\d.,±+\-−\[\]()/%=×≤≥<>~ n]*")
NBSP = "\u00a0"
NB_HYPHEN = "\u2011"  # looks like "-"; the browser does not break a line after it
SHORT = 20  # characters: a text cell this short is a label, kept to two lines (:func:`two_lines`)


def unbreakable(text: str) -> str:
    """A cell that holds only numbers ("0.806 ± 0.015", "+0.030 [+0.011, +0.053]", "1,284 / 229 / 686") with
    no-break spaces except before "±" and "[": the browser breaks it there or not at all, so a squeezed column
    shows "0.806" over "± 0.015" (two lines), never "0.806", "±", "0.015" on three, and a table of many such
    columns still fits the page."""
    if not NUMERIC_CELL.fullmatch(text):
        return text
    out = re.sub(r" (?![±\[])", NBSP, text)
    return out.replace(f",{NBSP}", ", ", 1) if text.startswith("[") else out  # an interval alone: after its comma


def two_lines(header: str) -> str:
    """A header (or a short label) as at most two runs of words joined by no-break spaces and hyphens, split where
    the two are most even ("Total wall time (min)" -> "Total wall" / "time (min)", "Has0 Acc-2 (%)" never breaks
    after "Acc-"): a narrow number column wraps it to two lines at most. Code and links are left as they are."""
    if any(m in header for m in ("`", "](", "{")):
        return header
    words = header.replace("-", NB_HYPHEN).split(" ")
    if len(words) < 3:
        return " ".join(words)
    k = min(range(1, len(words)), key=lambda i: max(len(" ".join(words[:i])), len(" ".join(words[i:]))))
    return f"{NBSP.join(words[:k])} {NBSP.join(words[k:])}"


def md_table(df: pd.DataFrame, index: bool = False, nowrap: bool = True, labels=()) -> str:
    """A GitHub/MyST pipe table of ``df`` (cells as text; pipes escaped). ``nowrap``: number-only cells
    are :func:`unbreakable`, headers, short labels and every cell of the ``labels`` columns (model names) wrap
    to :func:`two_lines` at most (the book's tables; the README keeps plain spaces)."""
    if index:
        df = df.reset_index()
    def cell(v, label: bool = False) -> str:
        if isinstance(v, float) and math.isfinite(v):
            v = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
        text = str(v).replace("|", "\\|").replace("\n", " ")
        if not nowrap:
            return text
        short = (label or len(text) <= SHORT) and not NUMERIC_CELL.fullmatch(text)
        return two_lines(text) if short else unbreakable(text)

    head = [two_lines(cell(c)) if nowrap else cell(c) for c in df.columns]
    named = [c in labels for c in df.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v, n) for v, n in zip(row, named)) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)



def md_table_marks(df: pd.DataFrame, columns, longer_than: int = 16) -> str:
    """``df`` as a table whose long texts in ``columns`` (a reason where a number would stand, "no number of
    seeds (the test set alone is too small)") become a mark, "a", "b", ..., each explained once under the
    table; numbers and short texts stay in their cells."""
    out, notes = df.copy(), {}
    for c in [c for c in columns if c in df.columns]:
        out[c] = [f"{notes.setdefault(str(v), chr(ord('a') + len(notes)))}" if len(str(v)) > longer_than else v
                  for v in df[c]]
    return md_table(out) + "".join(f"\n\n{m}: {text}" if m == "a" else f"  \n{m}: {text}"
                                   for text, m in notes.items())


def md_terms(df: pd.DataFrame, term: str, body: str) -> str:
    """Two text columns as a MyST definition list (``term`` then its ``body``): prose that would stack into a
    tall table cell reads as paragraphs instead."""
    return "\n\n".join(f"{r[term]}\n: {r[body]}" for _, r in df.iterrows())


def pair_column(df: pd.DataFrame, column: str = "A vs B", sep: str = " vs ") -> pd.DataFrame:
    """``df`` whose ``column`` reads "A vs B" with one and the same A on every row: the column becomes
    "A vs" holding only the Bs (the A said once, in the header). Unchanged otherwise."""
    if column not in df.columns or df.empty or not all(sep in str(v) for v in df[column]):
        return df
    sides = [str(v).split(sep, 1) for v in df[column]]
    if len({a for a, _ in sides}) != 1:
        return df
    keep = lambda b: b.replace(" (", f"{NBSP}(")  # noqa: E731  (a name stays with its "(ours)")
    return df.assign(**{column: [keep(b) for _, b in sides]}).rename(columns={column: f"{sides[0][0]}{sep.rstrip()}"})

ZERO_EXTRA = 3  # at most this many more decimals for a value that rounds to zero


def md_table_notes(df: pd.DataFrame, columns, key: str) -> str:
    """``df`` as a table that fits the content column: the long-text ``columns`` (ids, sources, protocols) leave
    it and become numbered notes under it, each row marked "[n]" in its ``key`` cell (rows with the same notes
    share a number). ``columns`` may map each column to the name its notes use."""
    names = dict(columns) if isinstance(columns, dict) else {c: c for c in columns}
    columns = [c for c in names if c in df.columns]
    if key not in df.columns or not columns:  # nothing to mark (an empty or renamed table): shown as it is
        return md_table(df)
    notes: dict[str, int] = {}
    marks = []
    for _, r in df.iterrows():
        text = "; ".join(f"{names[c]}: {r[c]}" for c in columns if str(r[c]) not in ("", "-"))
        marks.append(f" [{notes.setdefault(text, len(notes) + 1)}]" if text else "")
    out = df.drop(columns=columns)
    out[key] = [f"{v}{m}" for v, m in zip(out[key], marks)]
    return md_table(out) + "".join(f"\n\n[{n}] {text}" if n == 1 else f"  \n[{n}] {text}"
                                   for text, n in notes.items())


def short_cpu(name) -> str:
    """A CPU's marketing name without trademarks and filler ("Intel(R) Xeon(R) Processor" -> "Intel Xeon")."""
    text = re.sub(r"\((R|TM|tm|r)\)", "", str(name))
    text = re.sub(r"\b(Processor|CPU)\b", "", text)
    return re.sub(r"\s+", " ", text).strip() or str(name)


def num(value: float, dec: int, signed: bool = False) -> str:
    """``value`` with ``dec`` decimals (``signed``: with its sign). The rule for values that round to zero (an
    interval's bound near 0 decides its verdict, so rounding must not hide its side): a nonzero value gets up
    to :data:`ZERO_EXTRA` more decimals, to its first significant digit, with its sign ("-0.0004", "+0.0002");
    smaller than that, or zero, it prints without a sign ("0.000", never "-0.000")."""
    for d in range(dec, dec + ZERO_EXTRA + 1):
        out = f"{value:+.{d}f}" if signed or value < 0 else f"{value:.{d}f}"
        if float(out) != 0:
            return out if signed or value < 0 else out.lstrip("+")
    return f"{0:.{dec}f}"


def sig(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, thousands separated ("0.2954" -> "0.295", "1234.5" -> "1,235")."""
    if value == 0 or not math.isfinite(value):
        return str(value)
    dec = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return num(value, dec) if dec else f"{value:,.0f}"


def words(items, conj: str = "and") -> str:
    """A list in prose: ``["text", "audio", "vision"]`` -> "text, audio and vision" (never a Python repr)."""
    items = [str(x) for x in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conj} {items[-1]}"


def dropdown(title: str, body: str, open_: bool = False) -> str:
    """A folded MyST block (sphinx-design's dropdown) holding ``body``: reference tables a reader opens on demand."""
    return f"::::{{dropdown}} {title}\n{':open:' + chr(10) if open_ else ''}\n{body}\n::::"


def caption(text: str) -> str:
    """A figure's caption, as the paragraph under it: what the figure shows and what to see in it."""
    return f"**Figure.** {text}"


def not_yet_run(what: str, command: str = RERUN) -> str:
    """A MyST admonition saying plainly that ``what`` has no results yet, and the command that makes them."""
    return (f":::{{admonition}} Not yet run\n:class: warning\n{what}: {NOT_YET_RUN}.\n"
            f"`{command}` writes the results this page reads; rebuild the book afterwards.\n:::")


def show(text: str) -> None:
    """Display MyST markdown from a code cell (the book renders it as part of the page)."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def one_side(df: pd.DataFrame, a: str = "A", b: str = "B") -> pd.DataFrame:
    """A comparison table whose ``a`` column holds one and the same model on every row: that column goes and
    ``b`` is headed "<A> vs" (the model said once). Unchanged otherwise."""
    if a not in df.columns or b not in df.columns or df.empty or df[a].nunique() != 1:
        return df
    return df.drop(columns=a).rename(columns={b: f"{df[a].iloc[0]} vs"})
