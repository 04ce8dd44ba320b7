"""The performance chapter and the README's speed line: ``miar bench`` JSON files (``results/bench/``)
and the sweep records (``results/sweeps/``), as tables of targets and as figures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from miar.report.catalog import NOT_YET_RUN
from miar.report.formatting import short_cpu
from miar.sweep_records import KERNELS_FRESH, KERNELS_REUSED, study_wall, sweep_records

TARGET_MMSA = 1.5  # our MulT-style model over MMSA's MulT, training samples/s (issue target)
TARGET_EPOCH_S = 30.0  # one MIAR epoch at MOSEI size on 2 CPU cores
TARGET_STUDY_S = 4 * 3600.0  # the redesigned study, tuning included, on 2 cores with 2 workers (issue 15)


def study_total(study: dict) -> tuple[float, int]:
    """The whole study's wall seconds and runs from :func:`~miar.report.study_time.study_wall`: its sweeps and
    its tuning studies (the study issue's target counts tuning)."""
    return (float(study["wall_s"]) + float(study.get("tuning_s", 0)),
            int(study["runs_in_sweep"]) + int(study.get("tuning_runs", 0)))


def load_bench(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def kernel_overhead(results: str | Path, name: str = "main") -> pd.DataFrame:
    """The ``name`` sweep run from scratch with a fresh kernel per run and with one kernel per worker:
    wall time, worker-seconds per run and the fresh/reused ratio on the same CPU model."""
    df = sweep_records(results, name)
    if df.empty or "kernels" not in df:
        return pd.DataFrame()
    df = df[df["complete_from_scratch"].astype(bool) & df["kernels"].notna()]
    rows = []
    for (cpu, workers), g in df.groupby(["cpu_model", "workers"], sort=False):
        last = g.groupby("kernels").tail(1).set_index("kernels")
        for kind, r in last.iterrows():
            rows.append({"CPU": cpu, "Workers": int(workers), "Kernels": kind, "Runs": int(r["runs_in_sweep"]),
                         "Wall (min)": round(float(r["wall_s"]) / 60, 2),
                         "Worker-s per run": round(float(r["wall_s"]) * int(workers) / int(r["runs_in_sweep"]), 1)})
        if len(last) == 2:
            fresh, reused = (float(last.loc[k, "wall_s"]) for k in (KERNELS_FRESH, KERNELS_REUSED))
            rows.append({"CPU": cpu, "Workers": int(workers), "Kernels": "fresh / reused", "Runs": "-",
                         "Wall (min)": f"{fresh / reused:.2f}×", "Worker-s per run": "-"})
    return pd.DataFrame(rows)


def machine_text(report: dict) -> str:
    m = report.get("machine", {})
    dev = m.get("device_name") or m.get("cpu_model", "?")
    return f"{dev}, {m.get('cores', '?')} cores, {m.get('torch_threads', '?')} torch threads, torch {m.get('torch', '?')}"


def targets_table(report: dict, study: dict | None) -> pd.DataFrame:
    """The issue's measured targets: value, target, met."""
    rows = []
    sp = report.get("mult_train_speedup_vs_mmsa")
    n = len(report.get("mmsa", {}).get("shapes", []))
    rows.append({"Measure": f"Our MulT-style model over MMSA's MulT, training samples/s (geometric mean of {n} shapes)",
                 "Value": f"{sp:.2f}×" if sp else NOT_YET_RUN, "Target": f"≥ {TARGET_MMSA}×",
                 "Met": "-" if sp is None else "yes" if sp >= TARGET_MMSA else "no"})
    ep = report.get("miar_mosei_epoch_s")
    size = next((r for r in report.get("epoch_scaling", []) if r.get("size") == "mosei"), {})
    what = f"{size['n_samples']:,} samples, aligned, batch {size['batch']}" if "batch" in size else "aligned"
    rows.append({"Measure": f"One MIAR training epoch at MOSEI size ({what})",
                 "Value": f"{ep:.1f} s" if ep else NOT_YET_RUN, "Target": f"≤ {TARGET_EPOCH_S:.0f} s",
                 "Met": "-" if ep is None else "yes" if ep <= TARGET_EPOCH_S else "no"})
    target = f"≤ {TARGET_STUDY_S / 3600:.0f} h, tuning included (the study issue)"
    if study:
        w, runs = study_total(study)
        where = f", {study['cpu_model']}" if isinstance(study.get("cpu_model"), str) else ""
        pending = "".join(f"; `{n}` {what}" for n, what in study.get("pending", {}).items())
        met = "no" if w > TARGET_STUDY_S else "yes" if study.get("complete", True) else "-"
        rows.append({"Measure": f"The whole study ({study.get('tuning_studies', 0)} tuning studies and "
                                f"{len(study.get('parts', {})) or 1} sweeps, {runs} runs, {study['workers']} workers{where}"
                                f"{pending})",
                     "Value": f"{w / 60:.1f} min" + (" so far" if pending else ""), "Target": target, "Met": met})
    else:
        rows.append({"Measure": "The whole study", "Value": NOT_YET_RUN, "Target": target, "Met": "-"})
    return pd.DataFrame(rows)


def mmsa_table(report: dict) -> pd.DataFrame:
    mm = report.get("mmsa", {})
    return pd.DataFrame([{"Shape": f"{r['preset'].upper()} {'aligned' if r['aligned'] else 'unaligned'}",
                          "Batch": r["batch"], "Ours (samples/s)": round(r["ours_samples_per_s"]),
                          "MMSA (samples/s)": round(r["mmsa_samples_per_s"]),
                          "Speedup": f"{r['speedup']:.2f}×"} for r in mm.get("shapes", [])])


def models_table(report: dict, batch: int = 64) -> pd.DataFrame:
    """Training samples/s, inference ms per batch, FLOPs per sample and fraction of the matmul peak."""
    rows = [r for r in report.get("models", []) if r["batch"] == batch]
    return pd.DataFrame([{"Model": r["model"],
                          "Shape": f"{r['preset'].upper()} {'aligned' if r['aligned'] else 'unaligned'}",
                          "Train samples/s": round(r["train_samples_per_s"]),
                          "Inference ms/batch": round(r["infer_batch_ms"], 1),
                          "MFLOP/sample": round(r["flops_per_train_sample"] / 1e6, 1),
                          "Fraction of matmul peak": f"{100 * r['fraction_of_peak']:.1f}%"} for r in rows])


def mmsa_note(report: dict) -> str:
    """The MMSA adapter's note on what still differs between the two models, as one paragraph. Files written
    before the adapter kept the note's first words start mid-sentence ("that remain ..."): those words are put back."""
    note = " ".join(str(report.get("mmsa", {}).get("note", "")).split()).replace("``", "`")
    if note and not note.startswith("Known differences"):
        note = "Known differences " + note
    return note


def speedup_figure(report: dict):
    """Our MulT-style model's training throughput over MMSA's MulT, one bar per shape and batch, the ratio
    written beside each bar (None without the comparison)."""
    import matplotlib.pyplot as plt

    df = mmsa_table(report)
    if df.empty:
        return None
    ratio = pd.Series([float(r["speedup"]) for r in report["mmsa"]["shapes"]])
    labels = [f"{s}, batch {b}" for s, b in zip(df["Shape"], df["Batch"])]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(df) + 1.2), constrained_layout=True)
    y = range(len(df))
    ax.barh(y, ratio, color="tab:blue", height=0.6)
    for i, r in enumerate(ratio):
        ax.text(r + 0.03, i, f"{r:.2f}×", va="center", fontsize=8)
    ax.axvline(1, color="black", lw=0.8, ls="--")
    ax.set_yticks(list(y), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, ratio.max() * 1.15)
    ax.set_xlabel(f"training throughput, ours ÷ MMSA {report['mmsa'].get('mmsa_version', '')} MulT (× faster)")
    return fig


def models_figure(report: dict, batch: int = 64):
    """Training samples/s of every model, one row per model and one marker per data shape, log scale (None when
    the file has no model section)."""
    import matplotlib.pyplot as plt

    df = models_table(report, batch)
    if df.empty:
        return None
    models = list(dict.fromkeys(df["Model"]))
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(models) + 1.4), constrained_layout=True)
    for (shape, g), marker in zip(df.groupby("Shape", sort=True), "osD^v<>"):
        ax.scatter(g["Train samples/s"], [models.index(m) for m in g["Model"]], marker=marker, label=shape, s=28)
    ax.set_yticks(range(len(models)), [MODEL_NAMES.get(m, m) for m in models])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel(f"training samples per second (batch {batch}, log scale; right is faster)")
    ax.grid(axis="x", which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))
    return fig


MODEL_NAMES = {"miar": "MIAR", "text_only": "text only", "early_fusion": "early fusion", "late_fusion": "late fusion",
               "bclstm": "bc-LSTM", "mult": "MulT", "misa": "MISA"}


def machine_sentence(report: dict) -> str:
    """The benchmark machine in words, load averages to two decimals."""
    m = report.get("machine", {})
    load = lambda k: ", ".join(f"{x:.2f}" for x in m.get(k, [])) or "not recorded"  # noqa: E731
    return (f"Machine: {m.get('cpu_model')}, {m.get('cores')} cores, {m.get('torch_threads')} torch threads, "
            f"torch {m.get('torch')}; load average (1, 5, 15 min) {load('load_average_start')} at the start and "
            f"{load('load_average_end')} at the end (the machine is shared: timings are medians of interleaved steps).")


def sweep_summary(results: str | Path) -> pd.DataFrame:
    """One line per sweep record: what ran, where, how, and how long (the full records: :func:`sweep_records`)."""
    sw = sweep_records(results)
    if sw.empty:
        return sw
    get = lambda c, d="not recorded": sw[c].fillna(d) if c in sw else d  # noqa: E731
    return pd.DataFrame({"Sweep": sw["sweep"].map(lambda s: Path(str(s)).stem),
                         "Started (UTC)": sw["started_utc"].map(lambda t: str(t).replace("T", " ").rstrip("Z")[:16]),
                         "Runs": sw["runs_in_sweep"], "From scratch": sw["complete_from_scratch"].map(
                             lambda b: "yes" if bool(b) else "no"),
                         "Workers": sw["workers"], "Kernels": get("kernels"),
                         "CPU": get("cpu_model").map(short_cpu) if "cpu_model" in sw else "not recorded",
                         "Wall time (min)": (sw["wall_s"].astype(float) / 60).round(1)})


def scaling_figure(report: dict):
    """One MIAR epoch's time and peak memory against the dataset size (None without the section)."""
    import matplotlib.pyplot as plt

    rows = report.get("epoch_scaling", [])
    if not rows:
        return None
    n = [r["n_samples"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3), constrained_layout=True)
    a.plot(n, [r["epoch_s"] for r in rows], "o-")
    a.axhline(TARGET_EPOCH_S, ls="--", color="grey", lw=1)
    a.text(n[0], TARGET_EPOCH_S, f" target at MOSEI size: {TARGET_EPOCH_S:.0f} s", va="bottom", fontsize=8,
           color="grey")
    a.set_xlabel("training samples per epoch")
    a.set_ylabel("seconds per epoch")
    for r in rows:
        a.annotate(r["size"].replace("_", " "), (r["n_samples"], r["epoch_s"]), fontsize=8,
                   textcoords="offset points", xytext=(4, -10))
    b.plot(n, [r["peak_memory_mb"] for r in rows], "o-", color="tab:orange")
    b.set_xlabel("training samples per epoch")
    b.set_ylabel("peak memory (MB)")
    for ax in (a, b):
        ax.ticklabel_format(axis="x", style="plain")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v / 1000:,.0f}k"))
    return fig


def readme_speed(results: str | Path) -> str | None:
    """The README's speed sentence from ``results/bench/cpu.json`` and the study's sweep record."""
    path = Path(results) / "bench" / "cpu.json"
    if not path.is_file():
        return None
    report, study = load_bench(path), study_wall(results)
    parts = []
    sp = report.get("mult_train_speedup_vs_mmsa")
    if sp:
        parts.append(f"our MulT-style model trains **{sp:.2f}×** as fast as MMSA {report['mmsa'].get('mmsa_version', '')}'s "
                     f"MulT with the same hyperparameters (geometric mean over {len(report['mmsa']['shapes'])} shapes)")
    if report.get("miar_mosei_epoch_s"):
        policy = report.get("machine", {}).get("omp_wait_policy", "?")
        cpu = report.get("machine", {}).get("cpu_model")
        others = [(p.name, load_bench(p)) for p in sorted(path.parent.glob("*.json")) if p != path]
        others = [f"{r['miar_mosei_epoch_s']:.1f} s with the {r['machine'].get('omp_wait_policy', '?').lower()} "
                  f"policy in `{name}`" for name, r in others  # the same CPU only: like with like
                  if isinstance(r, dict) and r.get("miar_mosei_epoch_s")
                  and r.get("machine", {}).get("cpu_model") == cpu]
        parts.append(f"one MIAR epoch at MOSEI size takes {report['miar_mosei_epoch_s']:.1f} s in that run "
                     f"({policy.lower()} OpenMP wait" + "".join(f"; {o}" for o in others) + ")")
    if study:
        cpu = study.get("cpu_model")
        on = f" on {cpu}" if isinstance(cpu, str) and cpu != report.get("machine", {}).get("cpu_model") else ""
        total, runs = study_total(study)
        pending = "; ".join(f"`{n}` {what}" for n, what in study.get("pending", {}).items())
        took = f"has taken {total / 60:.0f} min so far ({pending})" if pending else f"took {total / 60:.0f} min"
        where = "over" if total > TARGET_STUDY_S else "within" if not pending else "so far within"
        parts.append(f"the whole study ({runs} runs: its tuning studies and sweeps) {took} with "
                     f"{study['workers']} workers{on}, {where} the {TARGET_STUDY_S / 3600:.0f} h target "
                     "(`results/sweeps/`, `results/tune/`)")
    if not parts:
        return None
    return f"Speed on {machine_text(report)} (`results/bench/cpu.json`): " + "; ".join(parts) + "."


def epoch_runs_table(results: str | Path) -> pd.DataFrame:
    """``miar_mosei_epoch_s`` of every benchmark file, with its OpenMP wait policy and load."""
    rows = []
    for p in sorted((Path(results) / "bench").glob("*.json")):
        r = load_bench(p)
        if not isinstance(r, dict) or r.get("miar_mosei_epoch_s") is None:
            continue
        m = r.get("machine", {})
        cpu = str(m.get("cpu_model", "?")).replace("(R)", "").replace(" Processor", "")  # the model, clock kept
        rows.append({"File": f"`{p.name}`", "CPU": cpu, "Sections run": ", ".join(
                         k for k in ("models", "mmsa", "epoch_scaling") if r.get(k)),
                     "OpenMP wait policy": m.get("omp_wait_policy", "?"),
                     "Load at start": ", ".join(f"{x:.2f}" for x in m.get("load_average_start", [])),
                     "MIAR epoch at MOSEI size": f"{r['miar_mosei_epoch_s']:.1f} s",
                     f"≤ {TARGET_EPOCH_S:.0f} s": "yes" if r["miar_mosei_epoch_s"] <= TARGET_EPOCH_S else "no"})
    return pd.DataFrame(rows)

