"""The reproducibility appendix: compute used per experiment, the software environment of the runs,
benchmark JSON files as tables, and links to the executed notebooks and other files in the repository."""

from __future__ import annotations

import json
import os
from html import escape as html_escape
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from miar.pooled import FOLD_DIR
from miar.report.formatting import short_cpu, sig, words
from miar.report.io import notebooks

# $MIAR_BOOK_HTML is set by the book's Sphinx extension (miar.report.sphinx) for the kernels that execute the
# pages; $MIAR_REPO_URL (and $MIAR_REPO_BRANCH) by whoever builds a site to publish.
HTML_ENV, REPO_URL_ENV, REPO_BRANCH_ENV = "MIAR_BOOK_HTML", "MIAR_REPO_URL", "MIAR_REPO_BRANCH"


def compute_table(env: pd.DataFrame) -> pd.DataFrame:
    """Per experiment: runs, device, threads, total and mean wall time; a last row with the total."""
    if env.empty:
        return pd.DataFrame()
    g = env.groupby("experiment")
    join = lambda s: ", ".join(sorted({str(x) for x in s.dropna()}))  # noqa: E731
    cpus = lambda s: ", ".join(sorted({short_cpu(x) for x in s.dropna()}))  # noqa: E731
    df = pd.DataFrame({"Runs": g.size(), "Device": g["device_name"].agg(cpus) if "device_name" in env else "-",
                       "Torch threads": g["torch_threads"].agg(join) if "torch_threads" in env else "-",
                       "Total wall time (min)": (g["wall_time_s"].sum() / 60).round(1),
                       "Mean per run (min)": (g["wall_time_s"].mean() / 60).round(2)})
    df.loc["all"] = [len(env), "", "", round(env["wall_time_s"].sum() / 60, 1),
                     round(env["wall_time_s"].mean() / 60, 2)]
    return df.reset_index(names="Experiment")


def environment_table(env: pd.DataFrame) -> pd.DataFrame:
    """The distinct values of each environment field over all runs (commits abbreviated to git's 7 characters,
    so that the list of them stays within two lines)."""
    keys = ["miar", "python", "torch", "numpy", "platform", "device", "device_name", "cpu_simd", "cpu_count", "commit", "dirty"]
    short = {"commit": lambda v: f"`{v[:7]}`"}
    rows = [{"Field": k, "Values over the runs": ", ".join(short.get(k, str)(v) for v in sorted({str(v) for v in env[k].dropna()}))
             or "-"} for k in keys if k in env]
    return pd.DataFrame(rows)


def scalar(v) -> object:
    """A raw value as a reader wants it: a list as text, its floats to 3 significant digits (load averages
    "0.295, 0.748, 1.23", not 0.29541015625), nested lists with semicolons ("mosi True; mosi False"), never a
    Python repr; anything else as it is (the page's table prints floats to 4 significant digits)."""
    if not isinstance(v, list):
        return v
    item = lambda x: sig(x) if isinstance(x, float) else str(scalar(x))  # noqa: E731
    return ("; " if any(isinstance(x, list) for x in v) else ", " if v and not isinstance(v[0], list) else " ").join(
        " ".join(item(y) for y in x) if isinstance(x, list) else item(x) for x in v)


def flatten(obj, prefix: str = "") -> dict:
    """Nested dicts as dotted keys (lists of scalars joined, floats to 3 significant digits)."""
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in flatten(val, f"{prefix}{key}.").items()}
    if isinstance(obj, list) and not any(isinstance(x, (dict, list)) for x in obj):
        return {prefix.rstrip("."): scalar(obj)}
    if isinstance(obj, list):
        return {k: v for i, x in enumerate(obj) for k, v in flatten(x, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): scalar(obj)}


def bench_tables(path: Path) -> dict[str, pd.DataFrame]:
    """A benchmark JSON as tables: every list of records (at any depth) is its own table, named by its key;
    the remaining scalar fields form a "summary" table of dotted keys and values."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, list):
        return {"records": pd.DataFrame([flatten(x) if isinstance(x, dict) else {"value": x} for x in data])}
    tables: dict[str, pd.DataFrame] = {}
    scalars: dict[str, object] = {}

    def visit(obj: dict, prefix: str) -> None:
        for key, val in obj.items():
            name = f"{prefix}{key}"
            if isinstance(val, list) and val and all(isinstance(x, dict) for x in val):
                tables[name] = pd.DataFrame([flatten(x) for x in val])
            elif isinstance(val, dict):
                visit(val, f"{name}.")
            elif name == "mmsa.note":  # the adapter's note, whole even in files written before its fix
                from miar.report.perf import mmsa_note

                scalars[name] = mmsa_note({"mmsa": {"note": val}})
            else:
                scalars[name] = scalar(val)

    visit(data, "")
    summary = {"summary": pd.DataFrame(list(scalars.items()), columns=["Field", "Value"])} if scalars else {}
    return {**summary, **tables}


def repo_link(path: str | Path, text: str, page_dir: str = "book") -> str:
    """An HTML link to a file of the repository, to put in a page's MyST output instead of a ``{download}``
    (which would copy the file into the built site). To ``$MIAR_REPO_URL/blob/<$MIAR_REPO_BRANCH or main>/<path>``
    when the build is given the repository's web address (a published site), else relative from the built page
    (in ``$MIAR_BOOK_HTML/<page_dir>/``, which the book's Sphinx extension sets) to the file where it lies, which
    works while the site is read from the clone it was built in (``_build/html``)."""
    path = Path(path).resolve()
    if os.environ.get(REPO_URL_ENV):
        repo = Path(__file__).resolve().parents[2]
        rel = path.relative_to(repo).as_posix() if path.is_relative_to(repo) else path.name
        href = f"{os.environ[REPO_URL_ENV].rstrip('/')}/blob/{os.environ.get(REPO_BRANCH_ENV) or 'main'}/{rel}"
    else:
        html = Path(os.environ.get(HTML_ENV) or Path(__file__).resolve().parents[2] / "_build" / "html")
        href = Path(os.path.relpath(path, html.resolve() / page_dir)).as_posix()
    return f'<a href="{quote(href, safe="/:.+_-~")}">{html_escape(text)}</a>'


def notebook_links(results: str | Path, doc_dir: str | Path | None = None) -> str:
    """A MyST list of the executed notebooks: one line per experiment, each run a link to its notebook in the
    repository (:func:`repo_link`; marked when its run record is not complete: the run failed or is still
    running). ``doc_dir`` is not used (the links start from the built page)."""
    groups: dict[str, list[str]] = {}
    for nb in notebooks(results):
        exp = nb.parent.relative_to(Path(results) / "notebooks").as_posix()
        name = "alignment analysis" if nb.stem == ALIGNMENT_NOTEBOOK else nb.stem
        mark = "" if notebook_done(results, exp, nb.stem) else " (incomplete)"
        fold = FOLD_DIR.match(exp)  # the cross-fitted folds of one experiment share its line (r<R>f<F>/<run>)
        line = f"`{fold['experiment']}` (cross-fitted folds, `r<repeat>f<fold>/run`)" if fold else f"`{exp}`"
        name = f"r{fold['repeat']}f{fold['fold']}/{name}" if fold else name
        groups.setdefault(line, []).append(repo_link(nb, name) + mark)
    return "\n".join(f"- {line}: " + ", ".join(links) for line, links in groups.items())


ALIGNMENT_NOTEBOOK = "alignment"  # `miar align` saves results/notebooks/<experiment>/alignment.ipynb


def notebook_done(results: str | Path, experiment: str, stem: str) -> bool:
    """Whether an executed notebook left its result: a run notebook its run record's ``metrics.json``; the
    alignment notebook an ``alignment.json`` in every run of the experiment that kept its weights."""
    runs = Path(results) / "runs" / experiment
    if stem != ALIGNMENT_NOTEBOOK:
        return (runs / stem / "metrics.json").is_file()
    analysed = [d for d in runs.glob("*") if (d / "model.pt").is_file() and (d / "metrics.json").is_file()]
    return bool(analysed) and all((d / "alignment.json").is_file() for d in analysed)


def rerun_table(results: str | Path) -> pd.DataFrame:
    """``results/reruns/verify.json`` (``scripts/verify_reruns.py --json``): each rerun against its record."""
    path = Path(results) / "reruns" / "verify.json"
    if not path.is_file():
        return pd.DataFrame()
    rows = json.loads(path.read_text())["runs"]
    def on(cpu, simd):  # the SIMD level where kept: one model name covers CPUs that round differently
        return f"{cpu} ({simd_short(simd)})" if simd else str(cpu)

    def cpus(r):  # one column: the CPU of the record and of the rerun, said once when they are the same
        rec, new = on(r["recorded_on"], r.get("recorded_simd")), on(r["rerun_on"], r.get("rerun_simd"))
        return f"{rec}, both" if rec == new else f"{rec} → {new}"

    return pd.DataFrame([{"Run": f"`{Path(r['run']).parent.name}/{Path(r['run']).name}`",
                          "CPU (recorded → rerun)": cpus(r),
                          "Rerun at commit": str(r["commit"])[:10],
                          "Test metrics": "identical" if r["same"] else f"differ: {words(sorted(r['differences']))}"}
                         for r in rows])


def simd_short(simd: str) -> str:
    """A recorded SIMD level without the library names: "torch AVX512, numpy AVX512_ICL" -> "AVX512/AVX512_ICL"
    (torch's first, as recorded)."""
    return "/".join(part.split()[-1] for part in str(simd).split(", "))


def cpu_short(label: str) -> str:
    """A CPU model as a column header names it, the page's sentence giving it in full: its family, without the
    vendor and the clock ("Intel Xeon @ 2.80GHz" -> "Xeon", "AMD EPYC" -> "EPYC")."""
    words = str(label).split(" @")[0].replace("(R)", "").split()
    return " ".join(words[1:] if len(words) > 1 and words[0] in ("Intel", "AMD") else words)


def rerun_comparison(results: str | Path, name: str = "cross_cpu") -> dict | None:
    """``results/reruns/<name>.json`` (``scripts/compare_records.py``): the same configs run twice
    (``cross_cpu``: the study on two CPUs; ``fresh_kernels``: the main table with a kernel per run)."""
    path = Path(results) / "reruns" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def rerun_comparison_table(cmp: dict) -> pd.DataFrame:
    """Per experiment: the mean test MAE and Has0 Acc-2 (in %) of the same configs on the two machines."""
    df = pd.DataFrame(cmp["experiments"])
    old, new = (cpu_short(cmp[k].get("label") or cmp[k].get("device_name")) for k in ("old", "new"))
    # MAE to its display resolution (3 decimals), Acc-2 in % to 0.1 point; + 0.0 turns a rounded -0.0 into 0.0
    mae = lambda v: v.round(3) + 0.0  # noqa: E731
    acc = lambda v: (100 * v).round(1) + 0.0  # noqa: E731
    return pd.DataFrame({"Experiment": df["experiment"].map(lambda e: f"`{e}`"), "Seeds": df["n"],
                         f"MAE ({old})": mae(df["old_mae"]), f"MAE ({new})": mae(df["new_mae"]),
                         "Δ MAE": mae(df["new_mae"] - df["old_mae"]),
                         f"Has0 Acc-2 ({old})": acc(df["old_has0_acc2"]),
                         f"Has0 Acc-2 ({new})": acc(df["new_has0_acc2"]),
                         "Δ Acc-2 (points)": acc(df["new_has0_acc2"] - df["old_has0_acc2"])})


def commits_by_table(results: str | Path) -> pd.DataFrame:
    """Per table of the book (:func:`miar.report.catalog.planned`, plus the tuning studies): the commits its run
    records ran at (``env.json``), how many records, and whether any ran on a tree with uncommitted changes."""
    from miar.report.catalog import TUNING, planned

    results = Path(results)
    groups = {g: [results / "runs" / n for n in names] for g, names in planned().items()}
    groups["tuning studies (results/tune)"] = [results / "tune" / "runs" / f"{s}+t*" for s in TUNING.values()]
    rows = []
    for group, dirs in groups.items():
        envs = []
        for d in dirs:
            for e in sorted(d.parent.glob(f"{d.name}/s*/env.json")):
                try:
                    envs.append(json.loads(e.read_text()))
                except (OSError, ValueError):
                    continue
        if not envs:
            continue
        commits = sorted({str(e.get("commit"))[:10] for e in envs})
        rows.append({"Table": group, "Run records": len(envs), "Commit(s)": words([f"`{c}`" for c in commits]),
                     "Uncommitted changes": "yes" if any(e.get("dirty") for e in envs) else "no"})
    return pd.DataFrame(rows, columns=["Table", "Run records", "Commit(s)", "Uncommitted changes"])
