"""The book: it builds with warnings as errors from whatever is in ``results/`` (possibly nothing), every page
of the table of contents becomes an HTML page with real text and no error output, the appendix lists the
executed notebooks (linked where they lie in the repository, not copied: the site stays under
MAX_SITE_MB), and headless Chromium renders it to a non-blank image and lays every page out at 1280 px with tables
that fit the column with no cell beyond two lines, figures shown at their drawn size, no raw cells, no script
error and no network request.

The build runs without network where the machine allows it (a fresh network namespace via ``unshare -n`` with
only the loopback up), so a theme or asset download would fail the test. ``test_book_with_fake_results`` (slow)
builds once more from a fake results directory with every chapter populated and checks the numbers shown.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from miar import report as R
from miar.pooled import FOLD_DIR

REPO = Path(__file__).resolve().parents[2]
TRACEBACK = "Traceback (most recent call last)"
ERROR_WORDS = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b")
TEXT_OUTPUT = ("stream", "text_plain", "traceback", "error", "stderr")  # classes of printed (not rendered) outputs
MAX_SITE_MB = 40  # the built HTML, all of it: a reader downloads or hosts it whole
NOTEBOOK_HREF = re.compile(r'href="([^"]+\.ipynb)"')


def toc_pages() -> list[str]:
    """Every document in _toc.yml (root first), as paths without suffix."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                pages.append(e["file"])
            walk(e.get("sections"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return pages


def jupyter_book() -> str:
    exe = Path(sys.executable).parent / "jupyter-book"
    return str(exe) if exe.is_file() else (shutil.which("jupyter-book") or pytest.skip("no jupyter-book"))


def offline_prefix() -> list[str]:
    """A command prefix that runs without network (a new network namespace with loopback only), or [] where
    the machine does not allow it (then the build still runs, unisolated)."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return []
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=30)
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] if probe.returncode == 0 else []


def build(out: Path, results: Path | None = None) -> Path:
    """``jupyter-book build . --path-output out -W -n --keep-going``; returns the HTML directory."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop(R.RESULTS_ENV, None)
    if results is not None:
        env[R.RESULTS_ENV] = str(results)
    cmd = [*offline_prefix(), jupyter_book(), "build", str(REPO), "--path-output", str(out), "-W", "-n",
           "--keep-going"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200, cwd=REPO)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"book build failed ({' '.join(cmd)}):\n{log[-6000:]}"
    return out / "_build" / "html"


class Page(HTMLParser):
    """The article's text, the text of each printed cell output (stream, text/plain, traceback; not the
    rendered markdown, whose tables may quote an exception's name as data), and the classes of outputs."""

    def __init__(self, html: str):
        super().__init__()
        self.text: list[str] = []
        self.outputs: list[list[str]] = []
        self.classes: set[str] = set()
        self._stack: list[tuple[bool, bool]] = []  # (in article, in cell output) per open element
        self._skip = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        art, out = self._stack[-1] if self._stack else (False, False)
        if "output" in cls.split():
            self.classes.add(cls)
        if "output" in cls.split() and any(c in cls for c in TEXT_OUTPUT):
            out = True
            self.outputs.append([])
        if tag in ("script", "style"):
            self._skip += 1
        if tag not in ("br", "img", "meta", "link", "input", "hr"):
            self._stack.append((art or tag == "article", out))

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        if tag not in ("br", "img", "meta", "link", "input", "hr") and self._stack:
            self._stack.pop()

    def handle_data(self, data):
        art, out = self._stack[-1] if self._stack else (False, False)
        if self._skip:
            return
        if art:
            self.text.append(data)
        if out and self.outputs:
            self.outputs[-1].append(data)

    @property
    def article(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.text))


def read_page(html_dir: Path, page: str) -> Page:
    path = html_dir / f"{page}.html"
    assert path.is_file(), f"{page}: no HTML page {path}"
    return Page(path.read_text())


def check_pages(html_dir: Path) -> dict[str, Page]:
    pages = {}
    for page in toc_pages():
        p = read_page(html_dir, page)
        assert len(p.article) > 400, f"{page}: only {len(p.article)} characters of text"
        assert TRACEBACK not in p.article, f"{page}: a Python traceback"
        bad = {c for c in p.classes if any(w in c for w in ("traceback", "stderr", "error"))}
        assert not bad, f"{page}: error or stderr output blocks {bad}"
        for out in p.outputs:
            m = ERROR_WORDS.search("".join(out))
            assert m is None, f"{page}: a cell output contains {m.group(0)!r}: {''.join(out)[:300]}"
        pages[page] = p
    return pages


@pytest.fixture(scope="module")
def snapshot() -> dict:
    """What results/ holds just before the build (a sweep may be adding to it meanwhile)."""
    results = REPO / "results"
    return {"notebooks": R.notebooks(results), "summary": R.load_summary(results),
            "bench": R.bench_files(results), "title": R.title_tag(R.verdicts(results))}


@pytest.fixture(scope="module")
def built(tmp_path_factory, snapshot) -> Path:
    return build(tmp_path_factory.mktemp("book"))


def test_toc_lists_every_book_page():
    pages = toc_pages()
    assert pages[0] == "book/index" and len(pages) == len(set(pages))
    on_disk = {f"book/{p.stem}" for p in (REPO / "book").glob("*.md")} | {"notebooks/explore"}
    assert set(pages) == on_disk, "every page in book/ (and the exploration notebook) is in _toc.yml and vice versa"


def site_mb(html: Path) -> float:
    return sum(p.stat().st_size for p in html.rglob("*") if p.is_file()) / 1e6


def notebook_targets(html: Path, page: str = "book/appendix") -> list[Path]:
    """The files the page's .ipynb links point to, resolved from the page's directory (or the link's URL)."""
    hrefs = NOTEBOOK_HREF.findall((html / f"{page}.html").read_text())
    return [(html / page).parent.joinpath(unquote(h)).resolve() for h in hrefs if "://" not in h]


def test_every_page_builds_with_text_and_no_errors(built):
    check_pages(built)
    assert (built / "index.html").is_file()  # the redirect to book/index.html
    assert site_mb(built) < MAX_SITE_MB, f"the built site is {site_mb(built):.0f} MB"
    assert not list(built.rglob("_downloads/**/*.ipynb")), "executed notebooks copied into the site"


def test_appendix_lists_the_executed_notebooks(built, snapshot):
    appendix = read_page(built, "book/appendix").article
    nbs = snapshot["notebooks"]
    if not nbs:
        assert "Not yet run" in appendix and "results/notebooks" in appendix
    for nb in nbs:  # a cross-fitted fold's notebook sits on its experiment's line as r<R>f<F>/<run>
        fold = FOLD_DIR.match(nb.parent.name)
        name, exp = (f"r{fold['repeat']}f{fold['fold']}/{nb.stem}", fold["experiment"]) if fold else (nb.stem, nb.parent.name)
        assert name in appendix and exp in appendix
    targets = notebook_targets(built)  # each notebook is linked where it lies in the repository
    assert all(t.is_file() for t in targets), [t for t in targets if not t.is_file()][:3]
    assert {nb.resolve() for nb in nbs} <= set(targets)


def test_missing_results_are_said_plainly(built, snapshot):
    results = read_page(built, "book/results").article
    if not R.present(snapshot["summary"], R.MAIN_TABLE):
        assert "Not yet run" in results
    if not snapshot["bench"]:
        assert "Not yet run" in read_page(built, "book/performance").article
    index = read_page(built, "book/index").article
    undecided = "Inconclusive. No main claim is refuted"  # as rendered; the hidden source has it in **bold**
    assert (undecided in index) == (snapshot["title"] is None)
    if snapshot["title"] is not None:  # the source only holds "{tag}"; the rendered output holds the tag
        assert f"{snapshot['title']} MIAR (Zhu & Yu, 2026), decided" in index


def _render_module():
    spec = importlib.util.spec_from_file_location("check_book_render", REPO / "scripts" / "check_book_render.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_headless_chromium_renders_non_blank_pages(built, tmp_path):
    render = _render_module()
    binary = render.find_chromium()
    if binary is None:
        pytest.skip("no Chromium binary (apt-get install -y chromium-headless-shell, or set $CHROMIUM)")
    for page in render.DEFAULT_PAGES:
        r = render.check_page(built / page, tmp_path, binary)
        assert r["ok"], f"{page}: {r['reason']}"


def test_pages_render_offline_with_formulas_and_within_the_height_bound(built):
    """Every page in Chromium with the network off (its own network namespace where the machine allows it, and
    the tab emulated offline): the method page's formulas are typeset by the MathJax the book ships, no page
    asks for or names an http(s) script or stylesheet, no script fails, no page is taller than MAX_HEIGHT px at
    1400 px, and at 1280 px with every fold open no table is wider than the content column, no table cell wraps
    to more than two lines, no figure is shown below 0.8 of its drawn width and no table cell holds a raw dict
    or a float with more than 6 significant digits (``scripts/book_layout.py``)."""
    render = _render_module()
    binary = render.find_chromium()
    if binary is None:
        pytest.skip("no Chromium binary (apt-get install -y chromium-headless-shell, or set $CHROMIUM)")
    pages = render.book_pages(built)
    assert "book/method.html" in pages and (built / "_static" / "mathjax" / "tex-chtml.js").is_file()
    measured = {r["page"]: r for r in render.measure_book(built, pages, binary, prefix=offline_prefix())}
    assert measured["book/method.html"]["mjx"] > 0, "no formula rendered on the method page"
    index = measured["book/index.html"]  # the first screen (1400 x 900 px) holds the verdict and the forest plot
    assert index["verdict_top"] is not None and index["verdict_top"] < 900, index
    rows, labels = R.main_claim_rows(R.load_comparisons(REPO / "results"))
    if not rows.empty and R.forest(rows, labels) is not None:  # as the page decides: a forest needs comparisons
        assert index["first_figure_top"] is not None and index["first_figure_top"] < 900, index
    for page, r in measured.items():
        assert not r["external_refs"] and not r["external_requests"], f"{page}: network resources {r}"
        assert r["height"] <= render.MAX_HEIGHT, f"{page}: {r['height']} px at {render.WIDTH} px wide"
        assert not r["js_errors"], f"{page}: script errors {r['js_errors']}"
    layout = {page: r["layout"] for page, r in measured.items() if r["layout"]}
    assert not layout, "\n".join(f"{page}: {line}" for page, lines in layout.items() for line in lines)


PY_LIST = re.compile(r"(?<![\w)\]])\[(?:'[^'\]]*'(?:, )?)+\]")  # a list repr in prose ['text', 'audio'], not r['text']


def test_prose_has_no_python_reprs_and_the_named_figures_are_shown(built):
    for page in toc_pages():
        text = read_page(built, page).article
        assert not PY_LIST.search(text), f"{page}: a Python list in the text: {PY_LIST.search(text).group(0)}"
    perf = read_page(built, "book/performance").article
    assert "that remain (they change" not in perf.replace("Known differences that remain (they change", "")
    appendix = read_page(built, "book/appendix").article
    assert "alignment analysis (incomplete)" not in appendix
    html = (built / "book" / "alignment.html").read_text()
    figures = {k for k in ("tokens", "features") if any((REPO / "results").glob(f"runs/*/*/alignment_{k}.png"))}
    for kind in figures:  # the overview names both figures: both are shown
        assert f"t-SNE of the {'feature tokens' if kind == 'tokens' else 'per-modality features'}" in html


def test_external_scripts_and_stylesheets_are_found():
    render = _render_module()
    html = ('<script src="https://cdn.example.org/mathjax.js"></script><script src="../_static/a.js"></script>'
            '<link rel="stylesheet" href="//fonts.example.org/a.css"><link rel="canonical" href="https://x.org/">'
            '<link href="https://cdn.example.org/b.css" rel="preload" as="style"><a href="https://x.org">x</a>')
    assert render.external_refs(html) == ["https://cdn.example.org/mathjax.js", "//fonts.example.org/a.css",
                                          "https://cdn.example.org/b.css"]


def test_error_outputs_are_detected():
    html = ('<article><div class="cell_output docutils container"><div class="output stream highlight-myst-ansi">'
            '<pre>KeyError: mosi</pre></div><div class="output text_html"><p>(ModuleNotFoundError: as data)</p>'
            '</div></div></article>')
    page = Page(html)
    assert [ERROR_WORDS.search("".join(o)).group(0) for o in page.outputs] == ["KeyError"]  # not the data
    assert any("stream" in c for c in page.classes) and "ModuleNotFoundError" in page.article


def test_blank_image_is_rejected(tmp_path):
    import numpy as np
    from PIL import Image

    render = _render_module()
    Image.fromarray(np.full((50, 80, 3), 255, np.uint8)).save(tmp_path / "white.png")
    stats = render.image_stats(tmp_path / "white.png")
    assert stats["std"] == 0 and stats["ink"] == 0
    redirect = tmp_path / "index.html"
    redirect.write_text('<meta http-equiv="Refresh" content="0; url=book/index.html" />')
    assert render.follow_redirect(redirect) == (tmp_path / "book" / "index.html").resolve()


@pytest.mark.slow
def test_book_with_fake_results(tmp_path):
    """Every chapter populated from a fake results directory: the numbers shown are those of summary.json."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))  # tests/integration/test_report.py
    from test_report import write_fake_results

    exps = {R.MAIN: 0.5, **{n: 0.6 + 0.05 * i for i, n in enumerate(R.BASELINES)},
            **{R.variant(v): 0.55 for v in R.ABLATIONS},
            **{R.variant(e): 0.5 for e in ("minilm", "static")},
            **{R.variant(e, R.tuned("text_only")): 0.7 for e in ("minilm", "static")}}
    results = tmp_path / "results"
    write_fake_results(results, exps, extras=True)
    html = build(tmp_path / "book", results)
    pages = check_pages(html)
    summary = R.load_summary(results)
    text = pages["book/results"].article
    for name in R.MAIN_TABLE:
        assert R.fmt_stats(R.stats_of(summary, name, "mae"), "mae") in text
    assert "82.31 (mean of 5)" in text  # a published anchor, in its own column
    assert "Not yet run" not in text.split("The same on the bc split")[0]
    index = pages["book/index"].article
    claims = R.verdicts(results)
    assert R.headline(claims).replace("**", "") in index  # the verdict line, generated from comparisons.csv
    assert {r["claim"]: r["verdict"] for r in claims}["sota"] != R.NOT_YET_RUN  # MIAR and all six baselines ran
    assert R.fmt_stats(R.stats_of(summary, R.variant("no_norm"), "mae"), "mae") in pages["book/ablations"].article
    assert "results/bench/cpu.json" in pages["book/performance"].article
    assert "fake CPU" in pages["book/reproducibility"].article
    appendix = pages["book/appendix"].article
    assert all(name in appendix for name in exps)
    targets = notebook_targets(html)
    assert len(targets) == len(exps) and all(t.is_file() for t in targets)
    assert len(list((html / "_images").glob("*.png"))) >= 3  # seed, forest and encoder figures
