"""What the data allows, from ``results/probes/*.json`` (``scripts/probe_data.py``, :mod:`miar.probes`): the
leakage of the released features (tables and a figure) and the headroom for fusion (table and one sentence
that sets it beside the smallest difference the study can detect)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from miar.report.formatting import fmt, num

MODALITY = {"text": "Text, released CNN", "audio": "Audio, released openSMILE", "vision": "Vision, released 3D-CNN",
            "text_minilm": "Text, MiniLM (never saw MOSI labels)"}
SETTING = {"bc_test_released": "inside the 31 bc test videos, released features",
           "all_minilm_audio": "all 93 videos, MiniLM text and released audio"}


def load_probes(results: str | Path, name: str) -> dict:
    """``probes/<name>.json`` ({} when it does not exist yet)."""
    p = Path(results) / "probes" / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def _ci(v: list, dec: int = 2, signed: bool = False) -> str:
    return f"{num(v[0], dec, signed)} [{num(v[1], dec, signed)}, {num(v[2], dec, signed)}]"


def probe_settings(results: str | Path) -> str:
    """How the probe intervals were made, from the probe files themselves."""
    d = load_probes(results, "leakage")
    if not d:
        return "No probe results yet (`python scripts/probe_data.py`)."
    return (f"{d['resamples']:,} video resamples per interval; {d['folds']} grouped folds; seed {d['seed']}; "
            f"computed at commit `{str(d.get('commit'))[:7]}`.")


def leakage_table(results: str | Path) -> pd.DataFrame:
    """Per modality: probe r and Non0 Acc-2 on held-out training videos and on test videos, and the gap."""
    data = load_probes(results, "leakage").get("modalities", {})
    return pd.DataFrame([{"Features": MODALITY.get(m, m),
                          "r, held-out training videos": _ci(v["train_heldout"]["corr"]),
                          "r, test videos": _ci(v["test"]["corr"]),
                          "Gap in r [95%]": _ci(v["gap_r"], signed=True),
                          "Non0 Acc-2 (%), training / test": f"{100 * v['train_heldout']['non0_acc2'][0]:.1f} / "
                                                             f"{100 * v['test']['non0_acc2'][0]:.1f}"}
                         for m, v in data.items()])


def leakage_figure(results: str | Path):
    """Probe r on held-out training videos beside test videos, per feature set, with 95% intervals."""
    import matplotlib.pyplot as plt
    import numpy as np

    data = load_probes(results, "leakage").get("modalities", {})
    if not data:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.2), constrained_layout=True)
    names = list(data)
    for j, (part, colour, what) in enumerate((("train_heldout", "tab:orange", "held-out training videos"),
                                              ("test", "tab:blue", "test videos"))):
        r = np.array([data[m][part]["corr"] for m in names])  # (M, 3): estimate, low, high
        y = np.arange(len(names)) + (j - 0.5) * 0.3
        ax.errorbar(r[:, 0], y, xerr=[r[:, 0] - r[:, 1], r[:, 2] - r[:, 0]], fmt="o", color=colour, capsize=3,
                    label=what)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(names)), [MODALITY.get(m, m) for m in names])
    ax.invert_yaxis()
    ax.set_xlabel("Pearson r of a ridge probe with the sentiment score")
    fig.legend(frameon=False, fontsize=9, loc="outside lower center", ncol=2)  # below the axes, over no data
    return fig


def headroom_table(results: str | Path) -> pd.DataFrame:
    """Per setting and added modality: text alone, text plus it, the MAE gain and the residual r."""
    data = load_probes(results, "headroom").get("settings", {})
    rows = []
    for key, s in data.items():
        for other, w in s["with"].items():
            rows.append({"Where": SETTING.get(key, key), "Videos": s["n_videos"], "Added": other,
                         "MAE, text alone": _ci(s["text"]["mae"], 3),
                         "MAE, text + added": _ci(w["text_plus"]["mae"], 3),
                         "MAE gain from adding it [95%]": _ci(w["gain_mae"], 3, signed=True),
                         "r of added with the text probe's residual": _ci(w["residual_r"], signed=True)})
    return pd.DataFrame(rows)


def headroom_finding(results: str | Path, comps: pd.DataFrame) -> str | None:
    """One sentence: the largest linear fusion gain the data shows (upper end of its interval) beside the
    smallest MAE difference the study's comparisons can detect."""
    data = load_probes(results, "headroom").get("settings", {})
    gains = [w["gain_mae"] for s in data.values() for w in s["with"].values()]
    if not gains:
        return None
    best = max(g[2] for g in gains)
    main = (comps["metric"] == "mae") & (comps["family"].isin(["primary_std", "primary_bc"])) if not comps.empty else None
    mdd = comps.loc[main & comps["mdd80"].notna(), "mdd80"] if main is not None else None
    detect = (f"; MIAR's comparisons with the baselines detect MAE differences of {fmt(float(mdd.min()), 'mae')} "
              "or more"
              if mdd is not None and not mdd.empty else "")
    return (f"On this data, audio and vision add little that a linear read-out can use: adding them to text "
            f"improves a cross-fitted probe's MAE by at most {num(best, 3)} (upper end of the 95% intervals)"
            f"{detect}, so a fusion gain here may be too small to see whatever the model.")
