"""Render pages of the built book with headless Chromium: non-blank screenshots, page heights, rendered
formulas, no resource from the network, and a layout that fits (tables, figures, cells).

    python scripts/check_book_render.py                       # _build/html: index.html and book/results.html
    python scripts/check_book_render.py --html _build/html --out /tmp/shots book/ablations.html
    python scripts/check_book_render.py --measure             # every page: height at 1400 px, formulas, requests

A page passes when its PNG has real content: the grey-level standard deviation is above ``--min-std`` and at
least ``--min-ink`` of the pixels differ from the most common colour. A meta-refresh page (jupyter-book's
``index.html`` redirect) is followed to its target first. Nothing is fetched from the network: the browser
runs with background networking, component updates and first-run tasks off and a throwaway profile.

``--measure`` drives Chromium over the DevTools protocol on a pipe (``--remote-debugging-pipe``: no port, no
driver, no download) with the network emulated offline, and reports per page the rendered height at
``--width`` (default 1400 px), the number of MathJax formulas (``mjx-container`` elements), and every
http(s) request the page tried; it fails a page over ``--max-height`` px, with an external request or an
uncaught script error, and
any page whose HTML names an http(s) script or stylesheet (:func:`external_refs`). It then opens every fold
and lays the page out at 1280 px (``book_layout.LAYOUT_WIDTH``) and fails a table wider than the content
column, a table cell wrapping to more than two lines, a figure shown below 0.8 of its drawn width, or a table
cell holding a raw dict or a float with more than 6 significant digits (:mod:`book_layout`, beside this script).

Chromium: ``$CHROMIUM``, else the first of chromium-headless-shell, chromium, chromium-browser,
google-chrome on PATH (Debian: ``apt-get install -y chromium-headless-shell``). Exit 0 when every page
passes, 1 when one fails, 2 when no browser or no built page is found.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_layout import LAYOUT_JS, LAYOUT_WIDTH, layout_problems  # noqa: E402  (the script's sibling)

BINARIES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "headless_shell")
DEFAULT_PAGES = ("index.html", "book/results.html")
MAX_HEIGHT = 20_000  # px at 1400 px width: the longest page a reader is asked to scroll
WIDTH = 1400
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
         "--disable-extensions", "--mute-audio")
TAG = re.compile(r"<(script|link)\b[^>]*>", re.I)
REMOTE = re.compile(r"""\b(src|href)\s*=\s*["']?((https?:)?//[^"'\s>]+)""", re.I)


def find_chromium() -> str | None:
    """The browser binary: ``$CHROMIUM`` or the first of ``BINARIES`` on PATH."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    return next((shutil.which(b) for b in BINARIES if shutil.which(b)), None)


def follow_redirect(page: Path) -> Path:
    """The target of a ``<meta http-equiv="refresh" content="0; url=...">`` page, else the page itself."""
    m = re.search(r'http-equiv="refresh"[^>]*content="[^"]*url=([^"]+)"', page.read_text(errors="replace"), re.I)
    return (page.parent / m.group(1)).resolve() if m else page


def screenshot(page: Path, png: Path, binary: str, width: int = 1280, height: int = 2000,
               timeout: float = 120) -> subprocess.CompletedProcess:
    """Render ``page`` (a local HTML file) to ``png`` with headless Chromium."""
    with tempfile.TemporaryDirectory(prefix="miar-chromium-") as profile:
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--screenshot={png}", f"--window-size={width},{height}",
               "--disable-background-networking", "--disable-component-update", "--no-first-run",
               "--disable-dev-shm-usage", "--virtual-time-budget=5000", f"--user-data-dir={profile}",
               page.resolve().as_uri()]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def image_stats(png: Path) -> dict:
    """Grey-level std and the share of pixels that differ from the most common colour ("ink")."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)  # (H*W, 3)
    packed = (rgb[:, 0].astype(np.uint32) << 16) | (rgb[:, 1].astype(np.uint32) << 8) | rgb[:, 2]  # (H*W,)
    colours, counts = np.unique(packed, return_counts=True)
    grey = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # (H*W,)
    return {"std": float(grey.std()), "ink": float(1 - counts.max() / counts.sum()),
            "colours": int(len(colours)), "pixels": int(len(rgb))}


def check_page(page: Path, out_dir: Path, binary: str, min_std: float = 8.0, min_ink: float = 0.02) -> dict:
    """Screenshot one page and judge it; returns the stats with ``ok`` and ``png``."""
    target = follow_redirect(page)
    png = out_dir / (target.stem + ".png")
    proc = screenshot(target, png, binary)
    if not png.is_file():
        return {"page": str(page), "ok": False, "png": str(png),
                "reason": f"no screenshot (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"}
    stats = image_stats(png)
    ok = stats["std"] >= min_std and stats["ink"] >= min_ink
    reason = "" if ok else f"blank-looking: std {stats['std']:.2f} < {min_std} or ink {stats['ink']:.4f} < {min_ink}"
    return {"page": str(page), "rendered": str(target), "png": str(png), "ok": ok, "reason": reason, **stats}


def external_refs(html: str) -> list[str]:
    """The http(s) (or protocol-relative) URLs of the scripts and stylesheets an HTML page loads."""
    out = []
    for tag in TAG.finditer(html):
        t = tag.group(0)
        if tag.group(1).lower() == "link" and not re.search(r"""rel\s*=\s*["']?[^"'>]*(stylesheet|preload)""", t, re.I):
            continue
        out += [m.group(2) for m in REMOTE.finditer(t)]
    return out


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``): one tab,
    a throwaway profile, stopped by :meth:`close` (also as a context manager). ``prefix`` is prepended to the
    command (e.g. ``unshare -n ...`` to run without a network)."""

    def __init__(self, binary: str, prefix=(), width: int = WIDTH, height: int = 900, timeout: float = 60):
        self.timeout, self.profile = timeout, tempfile.mkdtemp(prefix="miar-chromium-")
        to_child, self._w = os.pipe()  # we write, Chromium reads its fd 3
        self._r, from_child = os.pipe()  # Chromium writes its fd 4, we read

        def fds():  # in the child: the pipe ends as fds 3 and 4 (dup first: either may already be 3 or 4)
            a, b = os.dup(to_child), os.dup(from_child)
            os.dup2(a, 3)
            os.dup2(b, 4)

        cmd = [*prefix, binary, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
               f"--window-size={width},{height}", "about:blank"]
        self.proc = subprocess.Popen(cmd, preexec_fn=fds, pass_fds=(3, 4), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._id, self._buf, self.events, self.session = 0, b"", [], None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable")
        self.resize(width, height)

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._r], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._r, 1 << 20) if ready else b""
            if not chunk:
                raise TimeoutError("no answer from Chromium" if not ready else "Chromium closed its pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, **params) -> dict:
        """Send one command (to the tab once attached) and return its result; events are kept in ``events``."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._message(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for i, m in enumerate(self.events):
            if m.get("method") == method:
                return self.events.pop(i)
        while True:
            m = self._message(deadline)
            if m.get("method") == method:
                return m
            self.events.append(m)

    def resize(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def offline(self) -> None:
        """Every network request of the tab fails (file:// pages still load)."""
        self.call("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1,
                  uploadThroughput=-1)

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        r = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:60]}...: {r['exceptionDetails'].get('text')}")
        return r["result"].get("value")

    def requests(self) -> list[str]:
        """The URLs the tab asked for since the last :meth:`open`."""
        return [m["params"]["request"]["url"] for m in self.events if m.get("method") == "Network.requestWillBeSent"]

    def errors(self) -> list[str]:
        """The uncaught script errors of the tab since the last :meth:`open` (e.g. a script loaded twice)."""
        return [m["params"]["exceptionDetails"].get("exception", {}).get("description")
                or m["params"]["exceptionDetails"].get("text", "")
                for m in self.events if m.get("method") == "Runtime.exceptionThrown"]

    def screenshot(self, png: Path, full_page: bool = False) -> Path:
        r = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)
        Path(png).write_bytes(base64.b64decode(r["data"]))
        return Path(png)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("Browser.close")
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# After the load event: wait for MathJax's first typeset (when the page has MathJax), then measure.
MEASURE_JS = """(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await new Promise(r => setTimeout(r, 300));
  const d = document.documentElement;
  const top = el => el ? el.getBoundingClientRect().top + window.scrollY : null;
  const verdict = [...document.querySelectorAll('article strong')].find(e => e.textContent.startsWith('Verdict:'));
  return {height: Math.max(d.scrollHeight, document.body ? document.body.scrollHeight : 0),
          mjx: document.querySelectorAll('mjx-container').length,
          verdict_top: top(verdict), first_figure_top: top(document.querySelector('article img')),
          title: document.title};
})()"""


def measure_page(browser: Browser, page: Path, png: Path | None = None, width: int = WIDTH) -> dict:
    """Open a built page offline; its rendered height (px) at ``width``, formulas rendered, external requests
    and scripts, then its ``layout`` problems at LAYOUT_WIDTH with every fold open."""
    target = follow_redirect(page)
    browser.resize(width, 900)
    browser.open(target.resolve().as_uri())
    m = browser.evaluate(MEASURE_JS)
    if png is not None:
        browser.screenshot(png)
    browser.resize(LAYOUT_WIDTH, 900)
    layout = layout_problems(browser.evaluate(LAYOUT_JS))
    remote = [u for u in browser.requests() if re.match(r"(https?:)?//", u)]
    return {"page": str(page), **m, "external_requests": remote, "layout": layout, "js_errors": browser.errors(),
            "external_refs": external_refs(target.read_text(errors="replace"))}


def measure_book(html: Path, pages, binary: str, width: int = WIDTH, prefix=()) -> list[dict]:
    """:func:`measure_page` for each page (relative to ``html``) in one browser, with the network off."""
    with Browser(binary, prefix=prefix, width=width) as b:
        b.offline()
        return [{**measure_page(b, Path(html) / p, width=width), "page": p} for p in pages]


def book_pages(html: Path) -> list[str]:
    """Every page of the built book (``book/`` and the notebooks that are pages) except search and genindex."""
    return sorted(p.relative_to(html).as_posix() for d in ("book", "notebooks") for p in Path(html).glob(f"{d}/*.html"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pages", nargs="*", default=list(DEFAULT_PAGES), help="pages relative to --html")
    p.add_argument("--html", default="_build/html", help="the built book (default: _build/html)")
    p.add_argument("--out", default=None, help="where the PNGs go (default: a temporary directory)")
    p.add_argument("--min-std", type=float, default=8.0)
    p.add_argument("--min-ink", type=float, default=0.02)
    p.add_argument("--measure", action="store_true", help="heights, formulas and network use of every page")
    p.add_argument("--width", type=int, default=WIDTH)
    p.add_argument("--max-height", type=int, default=MAX_HEIGHT)
    args = p.parse_args(argv)
    binary = find_chromium()
    if binary is None:
        print(f"no Chromium found (tried $CHROMIUM, {', '.join(BINARIES)}); "
              "Debian: apt-get install -y chromium-headless-shell", file=sys.stderr)
        return 2
    if args.measure:
        return measure_main(args, binary)
    out = Path(args.out or tempfile.mkdtemp(prefix="miar-shots-"))
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for rel in args.pages:
        page = Path(args.html) / rel
        if not page.is_file():
            print(f"{page}: not built (run `jupyter-book build .` first)", file=sys.stderr)
            return 2
        r = check_page(page, out, binary, args.min_std, args.min_ink)
        failed += not r["ok"]
        detail = r["reason"] or f"std {r['std']:.1f}, ink {r['ink']:.3f}, {r['colours']} colours"
        print(f"{'ok  ' if r['ok'] else 'FAIL'} {rel} -> {r['png']} ({detail})")
    print(f"browser: {binary}")
    return 1 if failed else 0


def measure_main(args, binary: str) -> int:
    """``--measure``: heights, formulas and external resources of every page (or the pages named)."""
    html = Path(args.html)
    pages = args.pages if args.pages != list(DEFAULT_PAGES) else book_pages(html)
    if not pages or not all((html / p).is_file() for p in pages):
        print(f"{html}: not built (run `jupyter-book build .` first)", file=sys.stderr)
        return 2
    failed = 0
    for r in measure_book(html, pages, binary, args.width):
        bad = [f"{r['height']} px > {args.max_height}"] if r["height"] > args.max_height else []
        bad += [f"requests {u}" for u in r["external_requests"]] + [f"loads {u}" for u in r["external_refs"]]
        bad += [f"script error {e.splitlines()[0]}" for e in r["js_errors"]]
        failed += bool(bad or r["layout"])
        print(f"{'ok  ' if not (bad or r['layout']) else 'FAIL'} {r['page']}: {r['height']:,} px, "
              f"{r['mjx']} formulas" + (f" ({'; '.join(bad)})" if bad else ""))
        for line in r["layout"]:
            print(f"       {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
