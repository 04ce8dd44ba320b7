#!/usr/bin/env python3
"""Render pages of the built book with headless Chromium and check the screenshots are not blank.

    python scripts/check_book_render.py                       # _build/html: index.html and book/results.html
    python scripts/check_book_render.py --html _build/html --out /tmp/shots book/ablations.html

A page passes when its PNG has real content: the grey-level standard deviation is above ``--min-std`` and at
least ``--min-ink`` of the pixels differ from the most common colour. A meta-refresh page (jupyter-book's
``index.html`` redirect) is followed to its target first. Nothing is fetched from the network: the browser
runs with background networking, component updates and first-run tasks off and a throwaway profile.

Chromium: ``$CHROMIUM``, else the first of chromium-headless-shell, chromium, chromium-browser,
google-chrome on PATH (Debian: ``apt-get install -y chromium-headless-shell``). Exit 0 when every page
passes, 1 when one fails, 2 when no browser or no built page is found.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BINARIES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "headless_shell")
DEFAULT_PAGES = ("index.html", "book/results.html")


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pages", nargs="*", default=list(DEFAULT_PAGES), help="pages relative to --html")
    p.add_argument("--html", default="_build/html", help="the built book (default: _build/html)")
    p.add_argument("--out", default=None, help="where the PNGs go (default: a temporary directory)")
    p.add_argument("--min-std", type=float, default=8.0)
    p.add_argument("--min-ink", type=float, default=0.02)
    args = p.parse_args(argv)
    binary = find_chromium()
    if binary is None:
        print(f"no Chromium found (tried $CHROMIUM, {', '.join(BINARIES)}); "
              "Debian: apt-get install -y chromium-headless-shell", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    sys.exit(main())
