"""Synthetic truths (issue 15, point 6): is each MIAR claim *testable* on data whose truth is known?

Two kinds of pure functions:

- **oracles** show from the generator alone (no model of the study) that the truth is in the data:
  :func:`gap_oracle` (a ridge fitted on one modality's z-scored pooled features does not transfer to another's,
  a quadratic probe tells the modalities apart, each modality alone stays predictable), :func:`interaction_oracle`
  (a ridge on the latents, and on the pooled features, with and without the text x audio product) and
  :func:`strength_oracle` (single-modality ridge probes rank the modalities as their strengths).
- **checks** read a results directory's run records (``runs/<experiment>/s<seed>/``) and say whether the mechanism
  does what the truth says it must: :func:`gap_check` (``alignment.json``'s token modality gap, MIAR vs its
  ablations), :func:`interaction_check` (test MAE differences with the video-bootstrap interval of
  :mod:`miar.stats`) and :func:`strength_check` (``metrics.json``'s ``gate_mean_test`` ranking vs the strengths
  in ``config.yaml``), and :func:`product_rows` (how much of the latent product a*b a model's test predictions carry,
  beyond the additive latents). Each returns rows ``{claim, comparison, value, low, high, must, holds, note}``;
  ``must`` says whether the truth *requires* the outcome (a failure then speaks against the mechanism) or leaves
  it open (the row is a measurement, not a test).

``python -m miar.report.synthetic_truths [RESULTS]`` prints the oracles and the checks.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml

from miar import stats as S
from miar.comparisons import load_predictions, load_settings
from miar.data import standardize
from miar.data.synthetic import make_synthetic

MODS = ("text", "audio", "vision")
GAP, INTERACTION, STRENGTHS = "synth_gap", "synth_interaction", "synth_strengths"


# ----------------------------------------------------------------------------- oracles

def pooled(ds, m: str) -> np.ndarray:
    """Mean over a modality's real steps: (N, d) float64."""
    mk = ds.mask[m].unsqueeze(-1).float()  # (N, T, 1)
    return ((ds.x[m] * mk).sum(1) / mk.sum(1).clamp(min=1)).numpy().astype(np.float64)


def ridge(x: np.ndarray, y: np.ndarray, lam: float = 1.0):
    """Ridge on centred inputs; returns a predictor ``f(x) -> (N,)``."""
    mu, ym = x.mean(0), y.mean()
    xc = x - mu
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ (y - ym))  # (d,)
    return lambda z: (z - mu) @ w + ym


def _r(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(p, y)[0, 1])


def _mae(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(np.clip(p, -3, 3) - y)))


def _splits(kw: dict) -> dict:
    return standardize(make_synthetic(**kw))  # z-scored with training statistics, as every run sees it


def gap_oracle(**kw) -> dict:
    """Per modality the test r of its own ridge (``self``), of the text ridge applied to the other modalities
    (``transfer``: needs equal dims) and the test accuracy of a logistic probe on [x, x^2] telling text from
    audio pooled features (0.5 = no gap), all after z-scoring."""
    from sklearn.linear_model import LogisticRegression

    sp = _splits(kw)
    tr, te = sp["train"], sp["test"]
    ytr, yte = tr.y.numpy().astype(np.float64), te.y.numpy().astype(np.float64)
    fits = {m: ridge(pooled(tr, m), ytr) for m in MODS}
    out = {"self": {m: _r(fits[m](pooled(te, m)), yte) for m in MODS}}
    if len({pooled(te, m).shape[1] for m in MODS}) == 1:
        out["transfer"] = {f"text->{m}": _r(fits["text"](pooled(te, m)), yte) for m in MODS[1:]}
    quad = lambda ds: np.concatenate([np.c_[pooled(ds, m), pooled(ds, m) ** 2] for m in ("text", "audio")])  # noqa: E731
    lab = lambda ds: np.r_[np.zeros(len(ds)), np.ones(len(ds))]  # noqa: E731
    if pooled(te, "text").shape[1] == pooled(te, "audio").shape[1]:
        clf = LogisticRegression(max_iter=4000).fit(quad(tr), lab(tr))
        out["modality_probe_acc"] = float(clf.score(quad(te), lab(te)))
    return out


def interaction_oracle(**kw) -> dict:
    """Test MAE of ridges on the generator's latents (additive part, a, b) without and with the product a*b,
    and on the pooled z-scored features of all modalities without and with the text x audio products."""
    raw = make_synthetic(**kw)
    lam = float(kw.get("interaction", 0.0))

    def lat(ds, prod: bool) -> np.ndarray:
        la = ds.meta["latents"]
        cols = [np.tanh(0.8 * math.sqrt(1 - lam) * la["g"]), la["a"], la["b"]]
        return np.stack(cols + ([la["a"] * la["b"]] if prod else []), 1)

    tr, te = raw["train"], raw["test"]
    ytr, yte = tr.y.numpy().astype(np.float64), te.y.numpy().astype(np.float64)
    out = {f"latents{'+product' if p else ''}": _mae(ridge(lat(tr, p), ytr)(lat(te, p)), yte) for p in (False, True)}
    sp = standardize(raw)
    tr, te = sp["train"], sp["test"]

    def feats(ds, prod: bool) -> np.ndarray:
        x = [pooled(ds, m) for m in MODS]
        if prod:
            t, a = x[0], x[1]
            x.append((t[:, :, None] * a[:, None, :]).reshape(len(t), -1))  # (N, d_t * d_a)
        return np.concatenate(x, 1)

    for p in (False, True):
        out[f"features{'+TxA' if p else ''}"] = _mae(ridge(feats(tr, p), ytr, lam=100.0)(feats(te, p)), yte)
    out["constant"] = _mae(np.full_like(yte, np.median(ytr)), yte)
    return out


def strength_oracle(**kw) -> dict:
    """Test r of a ridge probe on each modality's pooled z-scored features alone."""
    return gap_oracle(**kw)["self"]


def generator_kwargs(experiment: str) -> dict:
    """make_synthetic's arguments for an experiment's data (its config, no runs needed)."""
    from miar import config as C

    s = C.load(experiment).data.synthetic
    return dict(preset=s.preset, seed=s.seed, n_train=s.n_train, n_valid=s.n_valid, n_test=s.n_test,
                aligned=s.aligned, seq_len=s.seq_len, noise=s.noise, strength=s.strength, shift=s.shift,
                dims=s.dims, warp=s.warp, interaction=s.interaction)


# ----------------------------------------------------------------------------- checks on run records

def _runs(results: Path, experiment: str) -> list[Path]:
    return sorted(d for d in (results / "runs" / experiment).glob("s*") if (d / "metrics.json").is_file())


def _row(claim, comparison, value, low=math.nan, high=math.nan, must=True, holds=None, note="") -> dict:
    return {"claim": claim, "comparison": comparison, "value": value, "low": low, "high": high, "must": must,
            "holds": holds, "note": note}


def mae_rows(results: str | Path, claim: str, a: str, b: str, must: bool) -> dict:
    """MAE(A) - MAE(B) of the seed-averaged test predictions with the 95% video-bootstrap interval;
    ``holds`` = the interval lies below 0 (A better)."""
    results = Path(results)
    pa, pb = load_predictions(results, a), load_predictions(results, b)
    if pa is None or pb is None:
        return _row(claim, f"MAE {a} - {b}", math.nan, must=must, note="not run")
    st = load_settings()
    pair = S.Pair(pa.preds, pb.preds, pa.labels, S.video_codes(pa.ids))
    lo, hi = S.percentile_interval(S.video_bootstrap(pair, st.resamples, st.seed)["mae"])
    diff = S.point(pair)["mae"][2]
    return _row(claim, f"MAE {a} - {b}", diff, lo, hi, must, bool(hi < 0),
                f"{len(pa.preds)} vs {len(pb.preds)} seeds, {pair.n_videos} test videos")


def partial_product_corr(pred: np.ndarray, latents: dict, lam: float) -> float:
    """Correlation of predictions (N,) with the latent product a*b after both are residualised on the additive
    latents (1, u, u^2, u^3, a, b): how much of the product half of the label a model's predictions carry
    (0 for any model additive in text and audio, or blind to one of them)."""
    u = np.tanh(0.8 * math.sqrt(1 - lam) * latents["g"])
    basis = np.stack([np.ones_like(u), u, u ** 2, u ** 3, latents["a"], latents["b"]], 1)  # (N, 6)
    res = lambda v: v - basis @ np.linalg.lstsq(basis, v, rcond=None)[0]  # noqa: E731
    return _r(res(np.asarray(pred, dtype=np.float64)), res(latents["a"] * latents["b"]))


def product_rows(results: str | Path, experiment: str, must: bool, resamples: int = 1000) -> dict:
    """:func:`partial_product_corr` of the seed-averaged test predictions, with a 95% interval over resampled test
    videos; the test latents are regenerated from the base experiment's data config (the generator is
    deterministic). ``holds`` = the interval lies above 0."""
    p = load_predictions(Path(results), experiment)
    if p is None:
        return _row("interaction", f"product corr {experiment}", math.nan, must=must, note="not run")
    kw = generator_kwargs(INTERACTION)
    test = make_synthetic(**kw)["test"]
    order = {i: k for k, i in enumerate(test.ids)}
    idx = np.array([order[i] for i in p.ids])
    lat = {k: v[idx] for k, v in test.meta["latents"].items()}
    pred, video = p.preds.mean(0), S.video_codes(p.ids)
    value = partial_product_corr(pred, lat, kw["interaction"])
    rng, groups = np.random.default_rng(0), [np.flatnonzero(video == v) for v in range(video.max() + 1)]
    boot = []
    for _ in range(resamples):
        take = np.concatenate([groups[v] for v in rng.integers(0, len(groups), len(groups))])
        boot.append(partial_product_corr(pred[take], {k: v[take] for k, v in lat.items()}, kw["interaction"]))
    lo, hi = S.percentile_interval(np.array(boot))
    return _row("interaction", f"product corr {experiment}", value, lo, hi, must, bool(lo > 0),
                f"{len(p.preds)} seeds; partial correlation with a*b given the additive latents")


def interaction_check(results: str | Path) -> list[dict]:
    """MIAR must beat text-only and late fusion (the product half of the label is out of their reach) and its
    predictions must carry the product (partial correlation > 0; text-only and late fusion give the null ~0);
    MIAR vs no_interaction is measured, not required (the head's MLP over the pooled tokens can also form
    products)."""
    c, e = "interaction", INTERACTION
    return [mae_rows(results, c, e, f"{e}+text_only", True), mae_rows(results, c, e, f"{e}+late_fusion", True),
            mae_rows(results, c, e, f"{e}+no_interaction", False), product_rows(results, e, True),
            *(product_rows(results, f"{e}+{v}", False) for v in ("no_interaction", "late_fusion", "text_only"))]


def _token_gaps(results: Path, experiment: str) -> dict[str, float]:
    out = {}
    for d in _runs(results, experiment):
        a = d / "alignment.json"
        if a.is_file():
            out[d.name] = float(json.loads(a.read_text())["tokens"]["modality_gap"])
    return out


def gap_check(results: str | Path) -> list[dict]:
    """The token modality gap (alignment.json, mean over seeds) must be smaller with the contrastive term than
    without it, seed by seed; the normalisation's effect is measured (the truth does not fix its sign)."""
    results, rows = Path(results), []
    base = _token_gaps(results, GAP)
    for variant, must in (("no_contrastive", True), ("no_norm", False)):
        other = _token_gaps(results, f"{GAP}+{variant}")
        seeds = sorted(set(base) & set(other))
        if not seeds:
            rows.append(_row("gap", f"token gap {GAP} - {variant}", math.nan, must=must,
                             note="no alignment.json: run `miar align` on the synth_gap runs"))
            continue
        d = np.array([base[s] - other[s] for s in seeds])
        rows.append(_row("gap", f"token gap {GAP} - {variant}", float(d.mean()), float(d.min()), float(d.max()),
                         must, bool((d < 0).all()), f"paired by seed, {len(seeds)} seeds (low/high: min/max)"))
    rows.append(mae_rows(results, "gap", GAP, f"{GAP}+no_contrastive", False))
    rows.append(mae_rows(results, "gap", GAP, f"{GAP}+no_norm", False))
    return rows


def strength_check(results: str | Path, experiment: str = f"{STRENGTHS}+gate") -> list[dict]:
    """The gate's mean test weights of the three modality tokens must rank as the generated strengths; ``value``
    is the share of seeds whose ranking matches (no interval: ``low``/``high`` stay NaN), the note the mean weights."""
    runs = [d for d in _runs(Path(results), experiment)
            if json.loads((d / "metrics.json").read_text()).get("gate_mean_test")]
    if not runs:
        return [_row("strengths", f"gate ranking {experiment}", math.nan, note="not run or no gate weights")]
    strength = yaml.safe_load((runs[0] / "config.yaml").read_text())["data"]["synthetic"]["strength"]
    truth = [m for _, m in sorted(zip(strength, MODS), reverse=True)]
    gates = [json.loads((d / "metrics.json").read_text())["gate_mean_test"] for d in runs]
    match = [sorted(MODS, key=lambda m: -g[m]) == truth for g in gates]
    mean = {m: float(np.mean([g[m] for g in gates])) for m in MODS}
    note = ", ".join(f"{m} {mean[m]:.3f} (strength {s})" for m, s in zip(MODS, strength))
    return [_row("strengths", f"gate ranking {experiment}", float(np.mean(match)), math.nan, math.nan,
                 True, bool(all(match)), f"share of {len(match)} seeds ranked as generated; mean gate weights: {note}")]


def check_all(results: str | Path) -> list[dict]:
    return [*gap_check(results), *interaction_check(results), *strength_check(results),
            mae_rows(results, "strengths", f"{STRENGTHS}+gate", STRENGTHS, False)]


def main(argv: list[str]) -> int:
    import pandas as pd

    results = argv[0] if argv else "results"
    print("oracles (generator only):")
    print(" gap", {k: v for k, v in gap_oracle(**generator_kwargs(GAP)).items()})
    print(" interaction", interaction_oracle(**generator_kwargs(INTERACTION)))
    print(" strengths", strength_oracle(**generator_kwargs(STRENGTHS)))
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        print(pd.DataFrame(check_all(results)).round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
