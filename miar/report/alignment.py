"""The alignment chapter's view of where MIAR's contrastive loss acts: the token gap beside the projected gap.

MIAR's contrastive loss compares the outputs of a projection head (``MIAR.contrast``), not the feature tokens:
the head maps the tokens (``model.contrast_on=tokens``) or the pooled unimodal features before the interaction
(``pooled``), and the loss L2-normalises its outputs. ``alignment.json`` files written since the analysis
measured them hold a ``projected`` block (:func:`miar.study.analysis.alignment_numbers`); older files do not,
and their runs are simply absent here. Everything is read from :func:`miar.report.io.alignment_frame` and each
run's ``config.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from miar.report.formatting import words

HEAD_INPUT = {"tokens": "the feature tokens after the interaction",
              "pooled": "the pooled unimodal features before the interaction"}


def _mean_sd(values: pd.Series) -> str:
    v = values.dropna()
    return f"{v.mean():.3f} ± {v.std(ddof=0):.3f}" if len(v) else "-"


def contrastive_weight(alignment_json: str | Path) -> float | None:
    """The weight of the contrastive term in the run beside ``alignment_json`` (0 when ``loss.contrastive`` is
    none); None without a readable ``config.yaml`` there."""
    cfg = Path(alignment_json).parent / "config.yaml"
    try:
        loss = (yaml.safe_load(cfg.read_text()) or {}).get("loss", {})
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(loss, dict) or "weight" not in loss:
        return None
    return 0.0 if loss.get("contrastive") == "none" else float(loss["weight"])


def projected_gap_table(align: pd.DataFrame) -> pd.DataFrame:
    """Per experiment with ``projected`` numbers: what the head projects, the contrastive weight, the runs, and
    the modality gap of the tokens beside that of the projected embeddings (same runs; mean ± population sd)."""
    proj = align[align["kind"] == "projected"]
    rows = []
    for exp, g in proj.groupby("experiment", sort=True):
        tok = align[(align["experiment"] == exp) & (align["kind"] == "tokens") & align["run"].isin(g["run"])]
        weights = sorted({w for w in map(contrastive_weight, g["path"]) if w is not None})
        rows.append({"Experiment": f"`{exp}`", "Loss acts on": ", ".join(sorted(set(g["acts_on"].dropna()))),
                     "Contrastive weight": ", ".join(f"{w:g}" for w in weights) or "-", "Runs": len(g),
                     "Token gap": _mean_sd(tok["modality_gap"]), "Projected gap": _mean_sd(g["modality_gap"])})
    return pd.DataFrame(rows)


def loss_site_sentence(align: pd.DataFrame) -> str:
    """One sentence on where the loss acts, naming the head inputs found in the analysed runs."""
    sites = sorted(set(align.loc[align["kind"] == "projected", "acts_on"].dropna()))
    inputs = words([f"{HEAD_INPUT.get(s, s)} (`model.contrast_on={s}`)" for s in sites]) or "the feature tokens"
    return (f"MIAR's contrastive loss does not act on the tokens themselves but on a projection head applied to "
            f"{inputs}; the projected gap is measured on the head's outputs, L2-normalised as the loss normalises "
            "them and restricted to the groups the loss pairs (`loss.pairs`), while the token gap is measured "
            "before the head, the fused token included. A contrastive weight of 0 leaves the head untrained: its "
            "projected gap is then that of an untrained head, the reference for a trained one.")


__all__ = ["HEAD_INPUT", "contrastive_weight", "loss_site_sentence", "projected_gap_table"]
