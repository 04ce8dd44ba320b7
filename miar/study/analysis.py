"""Alignment numbers and plot helpers for the notebooks (``alignment.ipynb``, ``data.ipynb``).

Every number is a pure function of arrays, so it can be tested on hand-made points:

- **modality gap** (Liang et al., "Mind the Gap", NeurIPS 2022): L2-normalise every vector, take each group's
  centroid, and measure the Euclidean distance between two groups' centroids; ``modality_gap`` averages it over
  all pairs of groups. 0 = the groups share a centroid; sqrt(2) = two groups of orthogonal unit vectors; 2 = opposite.
- **silhouette** (scikit-learn ``silhouette_score``, cosine distance): by modality, every vector is labelled with
  its group, so 1 = the groups are separate clusters (unaligned) and ~0 = mixed (aligned); by polarity, within one
  group the label is ``y >= 0``, so higher = sentiment is more separable.

A "group" is a modality's pooled features before interaction, one feature token (``text``, ..., ``fused``) or,
with a contrastive head (MIAR), one embedding the loss compares (``projected``: :func:`model_outputs`, :func:`loss_groups`).
Torch and matplotlib are imported inside the few functions that need them.
"""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path
from typing import NamedTuple

import numpy as np

KINDS = ("tokens", "features", "projected")  # alignment.json's blocks; projected: models with a contrastive head

# ----------------------------------------------------------------------------- numbers

def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def centroid_gap(a: np.ndarray, b: np.ndarray) -> float:
    """|| mean(normalize(a)) - mean(normalize(b)) ||_2 for (N_a, d) and (N_b, d) arrays."""
    return float(np.linalg.norm(l2_normalize(a).mean(0) - l2_normalize(b).mean(0)))


def pairwise_gaps(groups: dict[str, np.ndarray]) -> dict[str, float]:
    """``centroid_gap`` of every pair of groups, keyed ``"a|b"`` in the groups' order."""
    return {f"{a}|{b}": centroid_gap(groups[a], groups[b]) for a, b in combinations(groups, 2)}


def modality_gap(groups: dict[str, np.ndarray]) -> float:
    """Mean pairwise centroid gap (see the module docstring); nan with fewer than two groups."""
    gaps = list(pairwise_gaps(groups).values())
    return float(np.mean(gaps)) if gaps else math.nan


def silhouette(x: np.ndarray, labels, metric: str = "cosine") -> float:
    """Mean silhouette coefficient; nan when there are fewer than 2 or as many labels as points."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    k = len(np.unique(labels))
    if k < 2 or k >= len(labels):
        return math.nan
    return float(silhouette_score(np.asarray(x, dtype=np.float64), labels, metric=metric))


def stack_groups(groups: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All groups' vectors in one (sum N, d) array and the group name of each row."""
    x = np.concatenate([np.asarray(v) for v in groups.values()])
    names = np.concatenate([[k] * len(v) for k, v in groups.items()])
    return x, names


def silhouette_by_group(groups: dict[str, np.ndarray], metric: str = "cosine") -> float:
    """Silhouette with each vector labelled by its group (modality or token)."""
    if len(groups) < 2:
        return math.nan
    return silhouette(*stack_groups(groups), metric=metric)


def silhouette_by_polarity(groups: dict[str, np.ndarray], y: np.ndarray,
                           metric: str = "cosine") -> dict[str, float]:
    """Per group, the silhouette of its vectors labelled ``y >= 0``; plus their ``mean``."""
    pol = np.asarray(y) >= 0
    out = {k: silhouette(v, pol, metric=metric) for k, v in groups.items()}
    vals = [v for v in out.values() if not math.isnan(v)]
    out["mean"] = float(np.mean(vals)) if vals else math.nan
    return out


def alignment_summary(groups: dict[str, np.ndarray], y: np.ndarray) -> dict:
    """The alignment numbers of one set of groups (JSON-ready; nan as None)."""
    out = {
        "groups": list(groups), "n": int(len(y)),
        "modality_gap": modality_gap(groups), "pairwise_gap": pairwise_gaps(groups),
        "silhouette_modality": silhouette_by_group(groups),
        "silhouette_polarity": silhouette_by_polarity(groups, y),
    }
    return json_ready(out)


def headline(numbers: dict) -> dict:
    """The three headline numbers of each kind (:data:`KINDS`) in one run's alignment numbers."""
    return {f"{kind} {key}": (numbers[kind][key]["mean"] if key == "silhouette_polarity" else numbers[kind][key])
            for kind in KINDS if kind in numbers
            for key in ("modality_gap", "silhouette_modality", "silhouette_polarity")}


def json_ready(obj):
    """Floats rounded to 6 places, nan/inf as None, numpy scalars as Python numbers."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return round(float(obj), 6) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


# ----------------------------------------------------------------------------- raw features

def pool_raw(ds) -> dict[str, np.ndarray]:
    """Per modality, one (N, d_m) vector per sample: the target step of a context window, else the
    mean over real steps (like the model's pooling, on the input features)."""
    out = {}
    for m in ds.modalities:
        x, mask = ds.x[m].numpy(), ds.mask[m].numpy()  # (N, T, d), (N, T)
        if ds.target is not None and ds.target.shape == ds.mask[m].shape:
            w = ds.target.numpy().astype(np.float64)
        else:
            w = mask.astype(np.float64)
        out[m] = (x * w[..., None]).sum(1) / np.maximum(w.sum(1, keepdims=True), 1.0)
    return out


def random_project(groups: dict[str, np.ndarray], width: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """Map each group to ``width`` dims with its own Gaussian matrix N(0, 1/width) (Johnson-Lindenstrauss),
    drawn from ``np.random.default_rng(seed)`` in the groups' order; angles within a group are roughly kept."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, v in groups.items():
        w = rng.normal(0.0, 1.0 / math.sqrt(width), size=(v.shape[1], width))  # (d_m, width)
        out[k] = np.asarray(v, dtype=np.float64) @ w
    return out


def feature_stats(splits: dict) -> list[dict]:
    """Per split and modality: width, padded length, statistics over real steps, real lengths."""
    rows = []
    for split, ds in splits.items():
        for m in ds.modalities:
            mask = ds.mask[m].numpy()
            real = ds.x[m].numpy()[mask]  # (N_real, d)
            lens = mask.sum(1)
            rows.append({"split": split, "modality": m, "n": len(ds), "dim": real.shape[1],
                         "T": mask.shape[1], "mean": float(real.mean()), "std": float(real.std()),
                         "min": float(real.min()), "max": float(real.max()),
                         "len_mean": float(lens.mean()), "len_min": int(lens.min()),
                         "len_max": int(lens.max())})
    return rows


# ----------------------------------------------------------------------------- runs and models

def load_run(run_dir: str | Path, split: str = "test"):
    """(cfg, dataset of ``split``, model with ``model.pt`` loaded, in eval mode) of a run record."""
    import torch

    from miar import config as C
    from miar.data import build_splits
    from miar.model import build_model, upgrade_state_dict

    run_dir = Path(run_dir)
    if not (run_dir / "model.pt").is_file():
        raise C.ConfigError(f"{run_dir}: no model.pt (train with train.save_model=true)")
    cfg = C.load(str(run_dir / "config.yaml"))
    splits = build_splits(cfg)
    if split not in splits:
        raise C.ConfigError(f"split {split!r} is not one of {list(splits)}")
    model = build_model(cfg, splits["train"].dims)
    try:  # a torn or foreign file, or the weights of another model: one line, not a traceback
        state = torch.load(run_dir / "model.pt", weights_only=True, map_location="cpu")
        model.load_state_dict(upgrade_state_dict(state))  # weights saved before the shared encoder load too
    except Exception as e:  # unpickling, shape or key mismatches, a truncated zip
        msg = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise C.ConfigError(f"{run_dir / 'model.pt'}: not this run's weights ({msg})") from None
    return cfg, splits[split], model.eval()


class ModelVectors(NamedTuple):
    """What :func:`model_outputs` returns for one split (N samples)."""

    tokens: dict[str, np.ndarray]  # token name -> (N, d); {} for a model without tokens
    features: dict[str, np.ndarray]  # modality -> (N, d): pooled, before interaction
    y: np.ndarray  # (N,) labels
    projected: dict[str, np.ndarray]  # embedding name -> (N, p), unit rows; {} without a contrastive head
    acts_on: str | None  # what the contrastive head projects: "tokens" or "pooled"; None without one


def model_outputs(model, ds, batch_size: int = 256) -> ModelVectors:
    """Tokens, pre-interaction features, labels and the contrastive embeddings of ``ds``, in eval mode.

    ``projected`` is every embedding the model hands the contrastive loss (``ModelOutput.embeddings``), cast to
    float and L2-normalised along the last axis with ``F.normalize``, as ``miar.losses`` does before its logits."""
    import torch
    import torch.nn.functional as F

    from miar.data import iterate

    toks: dict[str, list] = {}
    feats: dict[str, list] = {}
    proj: dict[str, list] = {}
    model.eval()
    with torch.no_grad():
        for batch in iterate(ds, batch_size):
            out = model(batch)
            if out.tokens is not None:
                for i, name in enumerate(out.token_names):
                    toks.setdefault(name, []).append(out.tokens[:, i].float().numpy())  # (B, d)
            for m, f in out.features.items():
                feats.setdefault(m, []).append(f.float().numpy())  # (B, d)
            for k, e in out.embeddings.items():
                proj.setdefault(k, []).append(F.normalize(e.float(), dim=-1).numpy())  # (B, p), unit rows
    cat = lambda d: {k: np.concatenate(v) for k, v in d.items()}  # noqa: E731
    return ModelVectors(cat(toks), cat(feats), ds.y.numpy().astype(np.float64), cat(proj),
                        getattr(model, "contrast_on", None) if proj else None)


def loss_groups(projected: dict[str, np.ndarray], pairs: str) -> dict[str, np.ndarray]:
    """The projected groups that the contrastive loss pairs (``loss.pairs``, :func:`miar.model.contrastive_pairs`),
    in their order: with ``modal`` the fused token's projection is left out, as the loss leaves it out."""
    from miar.model import contrastive_pairs

    used = {k for pair in contrastive_pairs(tuple(projected), pairs) for k in pair}
    return {k: v for k, v in projected.items() if k in used}


def vector_groups(vectors: ModelVectors, pairs: str) -> dict[str, dict[str, np.ndarray]]:
    """Kind (:data:`KINDS`) -> groups: the tokens, the features and, with a contrastive head, the projected
    groups the loss pairs (``pairs``: the run's ``loss.pairs``)."""
    out = {"tokens": vectors.tokens, "features": vectors.features}
    if vectors.projected:
        out["projected"] = loss_groups(vectors.projected, pairs)
    return out


def alignment_numbers(vectors: ModelVectors, pairs: str) -> dict:
    """alignment.json's blocks: :func:`alignment_summary` of each kind of :func:`vector_groups`; the
    ``projected`` block also says what the head projects (``acts_on``) and which pairs the loss compares."""
    from miar.model import contrastive_pairs

    out = {kind: alignment_summary(groups, vectors.y) for kind, groups in vector_groups(vectors, pairs).items()}
    if "projected" in out:
        out["projected"].update(acts_on=vectors.acts_on, loss_pairs=[
            f"{a}|{b}" for a, b in contrastive_pairs(tuple(vectors.projected), pairs)])
    return out


# ----------------------------------------------------------------------------- t-SNE and plots

def subsample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_points`` of ``n`` items (all of them when n <= max_points)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def tsne_2d(x: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """(N, 2) t-SNE of L2-normalised rows (PCA init, ``random_state=seed``; perplexity capped at (N-1)/3)."""
    from sklearn.manifold import TSNE

    x = l2_normalize(x)
    perp = max(1.0, min(perplexity, (len(x) - 1) / 3))
    return TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(x)


def plot_tsne(groups: dict[str, np.ndarray], y: np.ndarray, title: str, seed: int = 0):
    """One joint t-SNE of all groups, drawn twice: coloured by group and by sentiment score."""
    import matplotlib.pyplot as plt

    x, names = stack_groups(groups)
    xy = tsne_2d(x, seed=seed)  # (sum N, 2)
    scores = np.tile(np.asarray(y), len(groups))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    for k in groups:
        sel = names == k
        a.scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.7, label=k)
    a.legend(markerscale=3, fontsize=8)
    a.set_title(f"{title}: by group")
    sc = b.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.7, c=scores, cmap="coolwarm", vmin=-3, vmax=3)
    fig.colorbar(sc, ax=b, label="sentiment")
    b.set_title(f"{title}: by sentiment")
    for ax in (a, b):
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


__all__ = ["l2_normalize", "centroid_gap", "pairwise_gaps", "modality_gap", "silhouette", "silhouette_by_group",
           "silhouette_by_polarity", "alignment_summary", "headline", "json_ready", "pool_raw", "random_project",
           "feature_stats", "load_run", "model_outputs", "subsample", "tsne_2d", "plot_tsne", "stack_groups", "KINDS",
           "ModelVectors", "loss_groups", "vector_groups", "alignment_numbers"]
