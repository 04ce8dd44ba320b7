"""``miar.report`` as a Sphinx extension (``_config.yml``: ``extra_extensions: [miar.report]``): it makes every
page depend on ``results/``, so an incremental build re-executes all pages when any result changed (:func:`setup`),
it tells the pages' kernels where the HTML goes (:func:`_export_locations`, for links into the repository), it
drops scripts that a page would otherwise load twice (:func:`_dedupe_scripts`), and it keeps the build's terminal
output to what a reader needs (:class:`QuietConfigDumps`)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from miar.report.catalog import RESULTS_ENV
from miar.report.provenance import HTML_ENV


def results_fingerprint(results: str | Path) -> str:
    """A hash of every file's path and content under ``results`` (dot files left out). Content, not mtime: a
    fresh clone, a ``git checkout`` or a ``miar collect`` that rewrites identical tables changes every mtime but
    no number, and must not re-execute the book."""
    import hashlib

    h = hashlib.sha256()
    root = Path(results)
    for p in sorted(root.rglob("*")) if root.is_dir() else []:
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts):
            h.update(f"{p.relative_to(root)}\0".encode())
            with open(p, "rb") as f:
                h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def _outdated(app, env, added, changed, removed) -> list[str]:
    """Sphinx ``env-get-outdated``: re-read (and so re-execute) every page when results/ has changed since
    the last build; otherwise an incremental build would keep pages whose source did not change but whose
    numbers did."""
    fp = results_fingerprint(os.environ.get(RESULTS_ENV) or Path(app.srcdir) / "results")
    if getattr(env, "miar_results_fingerprint", None) == fp:
        return []
    env.miar_results_fingerprint = fp
    return sorted(set(env.found_docs) - set(added) - set(changed))


class QuietConfigDumps(logging.Filter):
    """Drops the one-line dumps of myst-parser's and myst-nb's whole configuration ("myst v3.0.1:
    MdParserConfig(...)") that every build prints: noise in a newcomer's terminal. Warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(record.msg))  # sphinx's bold() adds colour codes
        return not text.startswith(("myst v", "myst-nb v"))


def _export_locations(app) -> None:
    """``builder-inited``: the HTML output directory as ``$MIAR_BOOK_HTML``, which the kernels that execute the
    pages inherit: :func:`miar.report.provenance.repo_link` links files of the repository from there instead of
    copying them into the site. (Not ``_config.yml``'s ``repository: url``: jupyter-book fills it with its own
    repository when unset; a published build sets ``$MIAR_REPO_URL`` instead.)"""
    os.environ[HTML_ENV] = str(app.outdir)


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """``html-page-context``: each script once. sphinx-thebe registers its inline configuration twice (two
    ``const THEBE_JS_URL`` declarations: a console error on every page)."""
    seen, kept = set(), []
    for js in context.get("script_files", []):
        key = (getattr(js, "filename", None) or "", tuple(sorted((getattr(js, "attributes", None) or {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def setup(app) -> dict:
    """``miar.report`` as a Sphinx extension (``_config.yml``: ``sphinx: extra_extensions``)."""
    app.connect("env-get-outdated", _outdated)
    app.connect("builder-inited", _export_locations)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    for handler in logging.getLogger("sphinx").handlers:
        if not any(isinstance(f, QuietConfigDumps) for f in handler.filters):
            handler.addFilter(QuietConfigDumps())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
