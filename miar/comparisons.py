"""The study's comparisons table: which experiments are compared (``miar/experiments/comparisons.yaml``),
with which equivalence margins (``miar/experiments/margins.yaml``, declared before the runs), computed from
the runs' ``predictions.csv`` with the statistics of :mod:`miar.stats`.

``miar collect`` calls :func:`comparisons` and writes ``tables/comparisons.csv`` and ``summary.json``'s
``comparisons``: one row per (family, A, B, metric) with the columns of :data:`COLUMNS`.

**The estimand** (column ``estimand``) is the difference between single trained models, paired by seed
(:mod:`miar.stats`): ``diff`` is mean over the seeds s of metric(A_s) - metric(B_s), in the metric's own units
(for MAE, negative means A is better), which equals ``value_a - value_b``, the difference of the two sides'
per-seed means as summary.csv has them. Nothing is averaged over seeds before a metric is computed: no
comparison is between ensembles. A cross-validated experiment (:mod:`miar.pooled`) enters with one row per
repeat (its folds pooled), paired by repeat.

**Seeds: the intersection rule.** A paired comparison needs the same seeds on both sides. Each side is reduced
to the seeds both ran (the intersection of their seed sets; for pooled experiments, of their repeats), and
``n_seeds_a`` / ``n_seeds_b`` are the counts actually used, so they are always equal; the ``note`` says when a
side had more. A pair with no seed in common is not compared (``verdict`` "not run", the note says why).

``ci_low/ci_high`` is the 95% video-bootstrap interval, ``ci_low_h/ci_high_h`` the hierarchical one (videos and
paired seeds resampled) that the verdicts use; ``p_perm`` the sign-flip permutation p over videos, ``p_holm``
it Holm-adjusted within the comparison's Holm set (per metric); ``p_tost`` the equivalence test against
``margin`` on the hierarchical distribution (``p_tost_holm`` adjusted); ``se_h`` the hierarchical standard
error; ``mdd80`` the minimum detectable difference at 80% power at the level alpha / (Holm set size);
``seeds_needed`` / ``videos_needed`` what would bring it down to the margin.

**Holm sets.** Holm's correction runs over a family's comparisons, or, where families declare the same
``holm`` name in comparisons.yaml, over all their comparisons together: a claim that spans two text arms
(two families) is corrected over its full set of comparisons, not arm by arm.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from miar import stats as S
from miar.declarations import ComparisonError, Settings, load_families, load_settings
from miar.metrics import METRICS
from miar.records import Predictions, RecordError, RunRecord, is_complete

COLUMNS = ("family", "a", "b", "metric", "estimand", "n_seeds_a", "n_seeds_b", "n_videos", "value_a", "value_b", "diff",
           "ci_low", "ci_high", "ci_low_h", "ci_high_h", "p_perm", "p_holm", "margin", "p_tost",
           "p_tost_holm", "se_h", "mdd80", "seeds_needed", "videos_needed", "verdict", "deciding", "note")
NOT_RUN = "not run"
ESTIMAND = "single-model, paired by seed"
ESTIMAND_POOLED = "single repeat (its folds pooled), paired by repeat"


def _runs(results: Path, experiment: str) -> list[RunRecord]:
    return [RunRecord(d) for d in sorted((results / "runs" / experiment).glob("*")) if d.is_dir() and is_complete(d)]


def load_predictions(results: str | Path, experiment: str) -> Predictions | None:
    """The complete runs' predictions of ``experiment``, aligned by utterance id (None when none has any).
    An experiment without runs of its own but with cross-validated fold records (``runs/<experiment>+r<R>f<F>``)
    gives its pooled predictions, one row per repeat (:func:`miar.pooled.pool`); None while none of its repeats
    has all its folds."""
    runs = _runs(Path(results), experiment)
    if not runs:
        from miar.pooled import Incomplete, pool  # lazy: miar.pooled imports miar.config

        try:
            p = pool(results, experiment)
        except Incomplete:
            return None
        if p is not None:
            return replace(p, pairing=tuple(p.repeats))  # a pooled row is one repeat: paired by repeat
    frames, left_out = [], 0
    for rec in runs:
        try:
            frames.append((rec.dir, rec.predictions))
        except RecordError:
            left_out += 1
    if not frames:
        return None
    ids = frames[0][1].index
    for d, f in frames:
        if not f.index.equals(ids):
            raise ComparisonError(f"{d / 'predictions.csv'}: its test ids differ from the other runs of {experiment}")
    preds = np.stack([f["pred"].to_numpy(np.float64) for _, f in frames])
    return Predictions(experiment, tuple(ids), preds, frames[0][1]["label"].to_numpy(np.float64), left_out,
                       pairing=tuple(_seed(d) for d, _ in frames))


def _seed(run_dir: Path) -> int:
    """The seed in a run's config.yaml (one-line ComparisonError when it has none)."""
    try:
        seed = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("seed")
    except (OSError, yaml.YAMLError, AttributeError) as e:
        raise ComparisonError(f"{run_dir / 'config.yaml'}: cannot read its seed ({str(e).splitlines()[0]})") from None
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ComparisonError(f"{run_dir / 'config.yaml'}: seed must be an integer, got {seed!r}")
    return seed


def valid_mae(results: str | Path, experiment: str) -> float:
    """Mean validation MAE over the complete runs of ``experiment`` (nan without runs); for a cross-validated
    experiment, over its fold records (every repeat and fold)."""
    if _cross_validated(experiment):
        from miar.pooled import valid_mae as pooled_valid_mae  # lazy, as above

        return pooled_valid_mae(results, experiment)
    vals = []
    for rec in _runs(Path(results), experiment):
        v = (rec.metrics.get("valid") or {}).get("mae")
        if isinstance(v, (int, float)) and math.isfinite(v):
            vals.append(float(v))
    return float(np.mean(vals)) if vals else math.nan


def resolve(results: str | Path, entry) -> str:
    """An experiment name, or for ``{choose: [...]}`` the one with the lowest mean validation MAE (the first
    listed when none has runs yet)."""
    if isinstance(entry, str):
        return entry
    scores = {n: valid_mae(results, n) for n in entry["choose"]}
    ran = [n for n in entry["choose"] if math.isfinite(scores[n])]
    return min(ran, key=lambda n: scores[n]) if ran else entry["choose"][0]


def _cross_validated(name: str) -> bool:
    from miar.pooled import is_cv_experiment  # lazy, as above

    return is_cv_experiment(name)


def _empty_rows(family: str, a: str, b: str, note: str) -> list[dict]:
    """Every metric's "not run" row for A vs B: no seeds used on either side."""
    estimand = ESTIMAND_POOLED if _cross_validated(a) else ESTIMAND
    return [{**dict.fromkeys(COLUMNS, math.nan), "family": family, "a": a, "b": b, "metric": m,
             "estimand": estimand, "n_seeds_a": 0, "n_seeds_b": 0, "verdict": NOT_RUN, "note": note}
            for m in METRICS]


def common_seeds(pa: Predictions, pb: Predictions) -> tuple[Predictions, Predictions, str]:
    """Both sides reduced to the seeds both ran, in sorted order, rows paired by seed (the intersection rule
    of the module docstring), and a note naming what each side had beyond them ("" when nothing was dropped).
    A seed that occurs twice in one experiment is refused (one line): it cannot be paired."""
    for p in (pa, pb):
        if len(set(p.pairing)) != len(p.pairing) or len(p.pairing) != len(p.preds):
            raise ComparisonError(f"{p.experiment}: its runs' seeds {list(p.pairing)} are not one distinct seed per "
                                  "run: its runs cannot be paired by seed")
    common = sorted(set(pa.pairing) & set(pb.pairing))

    def keep(p: Predictions) -> Predictions:
        rows = [p.pairing.index(s) for s in common]
        return replace(p, preds=p.preds[rows], pairing=tuple(common))

    unit = "repeat" if _cross_validated(pa.experiment) else "seed"
    extra = [f"{p.experiment} {len(p.pairing)}" for p in (pa, pb) if len(p.pairing) > len(common)]
    note = (f"paired on the {len(common)} {unit}(s) both sides ran (intersection rule; {unit}s run: "
            f"{', '.join(extra)})" if extra else "")
    return keep(pa), keep(pb), note


def _pair_rows(family: str, pa: Predictions, pb: Predictions, st: Settings) -> list[dict]:
    """Every metric's row for A vs B on their common seeds (Holm columns and verdict are filled per Holm set
    afterwards); "not run" rows when they share no seed."""
    if pa.ids != pb.ids:
        raise ComparisonError(f"{pa.experiment} and {pb.experiment} were tested on different utterances: "
                              "they cannot be compared")
    pa, pb, paired = common_seeds(pa, pb)
    if not pa.pairing:
        return _empty_rows(family, pa.experiment, pb.experiment, "no seed in common: a paired comparison "
                           "cannot be made")
    pair = S.Pair(pa.preds, pb.preds, pa.labels, S.video_codes(pa.ids))
    pt = S.point(pair)
    dv = S.video_bootstrap(pair, st.resamples, st.seed)
    dh = S.hierarchical_bootstrap(pair, st.resamples, st.seed)
    pp = S.sign_flip_test(pair, st.resamples, st.seed)
    notes = [f"{p.left_out} run(s) of {p.experiment} without predictions.csv left out" for p in (pa, pb)
             if p.left_out] + [f"{p.experiment}: {p.note}" for p in (pa, pb) if p.note] + ([paired] if paired else [])
    estimand = ESTIMAND_POOLED if _cross_validated(pa.experiment) else ESTIMAND
    rows = []
    for m in METRICS:
        lo, hi = S.percentile_interval(dv[m])
        lo_h, hi_h = S.percentile_interval(dh[m])
        rows.append({"family": family, "a": pa.experiment, "b": pb.experiment, "metric": m, "estimand": estimand,
                     "n_seeds_a": len(pa.preds), "n_seeds_b": len(pb.preds), "n_videos": pair.n_videos,
                     "value_a": pt[m][0], "value_b": pt[m][1], "diff": pt[m][2], "ci_low": lo, "ci_high": hi,
                     "ci_low_h": lo_h, "ci_high_h": hi_h, "p_perm": pp[m], "margin": st.margins[m],
                     "p_tost": S.tost(dh[m], st.margins[m]), "se_h": float(np.nanstd(dh[m], ddof=1)),
                     "_var_v": float(np.nanvar(dv[m], ddof=1)), "verdict": None, "note": "; ".join(notes)})
    return rows


def _without(p: Predictions | None, videos: frozenset) -> Predictions | None:
    """``p`` without the utterances of ``videos`` (the sensitivity analysis of :mod:`miar.crossval`)."""
    if p is None or not videos:
        return p
    keep = np.array([S.video_of(str(i)) not in videos for i in p.ids])
    return replace(p, ids=tuple(i for i, k in zip(p.ids, keep) if k), preds=p.preds[:, keep], labels=p.labels[keep])


def _finish_family(rows: list[dict], st: Settings) -> None:
    """Holm within one Holm set (a family, or the families that share a ``holm`` name) per metric, then power
    and the verdict of each row (in place)."""
    for m in METRICS:
        mine = [r for r in rows if r["metric"] == m and r["verdict"] != NOT_RUN]
        p_holm = S.holm([r["p_perm"] for r in mine])
        p_tost_holm = S.holm([r["p_tost"] for r in mine])
        level = st.alpha / max(len(mine), 1)
        for r, ph, pth in zip(mine, p_holm, p_tost_holm):
            var_v = r.pop("_var_v")
            r.update(p_holm=float(ph), p_tost_holm=float(pth), mdd80=S.mdd(r["se_h"], level, st.power))
            r["seeds_needed"], r["videos_needed"] = S.needed(
                r["se_h"] ** 2, var_v, min(r["n_seeds_a"], r["n_seeds_b"]), r["n_videos"], r["margin"],
                level, st.power)
            ends = ("ci_low", "ci_high") if r.pop("_interval", "h") == "v" else ("ci_low_h", "ci_high_h")
            r["verdict"] = S.decide(r["diff"], r[ends[0]], r[ends[1]], r["p_holm"], r["p_tost_holm"], m, st.alpha)


def comparisons(results: str | Path, families: dict | None = None, settings: Settings | None = None,
                progress=None, drop_videos: frozenset = frozenset(), interval: dict | None = None,
                cache: dict | None = None) -> list[dict]:
    """Every comparison of every family, one dict per (family, A, B, metric) with :data:`COLUMNS`.

    ``drop_videos`` leaves those videos' utterances out of every comparison; ``interval`` maps a family to the
    interval its verdicts use ("h", the hierarchical one, by default; "v", the video bootstrap, where the
    cross-validated study's A/A check chose it, :mod:`miar.crossval`). A family's ``deciding`` pair (resolved
    like its pairs, so ``{choose: [...]}`` picks by validation MAE) marks its rows ``deciding``; ``cache`` holds
    loaded predictions between calls."""
    families = load_families() if families is None else families
    st = load_settings() if settings is None else settings
    cache = {} if cache is None else cache
    out, holm_sets = [], {}
    for family, fam in families.items():
        rows, deciding = [], _deciding(results, fam)
        for ea, eb in fam["pairs"]:
            a, b = resolve(results, ea), resolve(results, eb)
            for name in (a, b):
                if name not in cache:
                    cache[name] = load_predictions(results, name)
            pa, pb = _without(cache[a], drop_videos), _without(cache[b], drop_videos)
            missing = [n for n, p in ((a, pa), (b, pb)) if p is None]
            if len(missing) == 2 and all(map(_cross_validated, missing)):
                continue  # a cross-validated pair before its sweep ran: no rows, so earlier tables stay unchanged
            new = (_empty_rows(family, a, b, f"no runs with predictions.csv: {', '.join(missing)}") if missing
                   else _pair_rows(family, pa, pb, st))
            for r in new:
                r.update(deciding=(a, b) == deciding if deciding else math.nan,
                         _interval=(interval or {}).get(family, "h"))
            rows += new
            if progress:
                progress(family, a, b)
        holm_sets.setdefault(fam.get("holm", family), []).extend(rows)
        out += rows
    for rows in holm_sets.values():
        _finish_family(rows, st)
    return [{k: r.get(k, math.nan) for k in COLUMNS} for r in out]


def _deciding(results: str | Path, fam: dict) -> tuple[str, str] | None:
    """The family's deciding (A, B), resolved; None when it declares none (every row decides)."""
    pair = fam.get("deciding")
    return (resolve(results, pair[0]), resolve(results, pair[1])) if pair else None


def frame(rows: list[dict]) -> pd.DataFrame:
    """The rows as a DataFrame with :data:`COLUMNS` (also for an empty list)."""
    return pd.DataFrame(rows, columns=list(COLUMNS))
