"""Alignment numbers (miar.study.analysis) on hand-made points with known answers."""

import math

import numpy as np
import pytest
import torch

from miar.data.batch import ModalDataset
from miar.study import analysis as A


def _cluster(center, n=200, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    return np.asarray(center, dtype=float) + noise * rng.normal(size=(n, len(center)))


E1, E2, E3 = np.eye(3)


def test_gap_of_orthogonal_clusters_is_sqrt2_and_silhouette_near_1():
    groups = {"text": _cluster(5 * E1), "audio": _cluster(5 * E2, seed=1)}
    assert A.modality_gap(groups) == pytest.approx(math.sqrt(2), abs=1e-3)
    assert A.silhouette_by_group(groups) > 0.98


def test_gap_of_opposite_clusters_is_2():
    assert A.centroid_gap(_cluster(E1), _cluster(-E1, seed=1)) == pytest.approx(2.0, abs=1e-3)


def test_gap_is_scale_free_and_zero_for_one_distribution():
    a = _cluster(E1 + E2, noise=0.3)
    assert A.centroid_gap(a, 10 * a) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    same = {"text": rng.normal(size=(3000, 8)) + 2, "audio": rng.normal(size=(3000, 8)) + 2}
    assert A.modality_gap(same) < 0.03
    assert abs(A.silhouette_by_group(same)) < 0.03


def test_modality_gap_averages_the_pairs():
    groups = {"text": _cluster(E1), "audio": _cluster(E2, seed=1), "vision": _cluster(-E1, seed=2)}
    pairs = A.pairwise_gaps(groups)
    assert list(pairs) == ["text|audio", "text|vision", "audio|vision"]
    assert pairs["text|vision"] == pytest.approx(2.0, abs=1e-3)
    assert A.modality_gap(groups) == pytest.approx((2 * math.sqrt(2) + 2) / 3, abs=1e-3)


def test_polarity_silhouette_within_each_group():
    y = np.r_[np.full(50, 1.5), np.full(50, -2.0)]
    separable = np.r_[_cluster(E1, 50), _cluster(E2, 50, seed=1)]  # positives at e1, negatives at e2
    mixed = np.random.default_rng(0).normal(size=(100, 3))
    out = A.silhouette_by_polarity({"text": separable, "audio": mixed}, y)
    assert out["text"] > 0.98
    assert abs(out["audio"]) < 0.1
    assert out["mean"] == pytest.approx((out["text"] + out["audio"]) / 2)


def test_degenerate_inputs_give_nan():
    x = _cluster(E1, 10)
    assert math.isnan(A.silhouette(x, np.zeros(10)))  # one label
    assert math.isnan(A.modality_gap({"text": x}))
    assert math.isnan(A.silhouette_by_group({"text": x}))


def test_alignment_summary_is_json_ready():
    y = np.linspace(-3, 3, 40)
    s = A.alignment_summary({"text": _cluster(E1, 40), "audio": _cluster(E2, 40, seed=1)}, y)
    assert set(s) == {"groups", "n", "modality_gap", "pairwise_gap", "silhouette_modality", "silhouette_polarity"}
    assert s["n"] == 40 and s["groups"] == ["text", "audio"]
    ready = A.json_ready({"a": float("nan"), "b": np.float32(0.5), "c": [np.int64(3)]})
    assert ready == {"a": None, "b": 0.5, "c": [3]}


def _tiny_dataset():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]], [[5.0, 6.0], [0.0, 0.0], [0.0, 0.0]]])  # (2, 3, 2)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    return ModalDataset(x={"text": x, "audio": x[..., :1]}, mask={"text": mask, "audio": mask},
                        y=torch.tensor([1.0, -1.0]), ids=["a", "b"])


def test_pool_raw_is_the_mean_over_real_steps():
    pooled = A.pool_raw(_tiny_dataset())
    np.testing.assert_allclose(pooled["text"], [[2.0, 3.0], [5.0, 6.0]])
    np.testing.assert_allclose(pooled["audio"], [[2.0], [5.0]])


def test_feature_stats_count_real_steps_only():
    rows = A.feature_stats({"train": _tiny_dataset()})
    text = next(r for r in rows if r["modality"] == "text")
    assert text["dim"] == 2 and text["T"] == 3 and text["n"] == 2
    assert text["min"] == 1.0 and text["max"] == 6.0 and text["mean"] == pytest.approx(3.5)
    assert (text["len_min"], text["len_max"], text["len_mean"]) == (1, 2, 1.5)


def test_random_projection_is_seeded_and_common_width():
    groups = {"text": np.ones((4, 7)), "audio": np.ones((4, 3))}
    a, b = A.random_project(groups, width=5, seed=3), A.random_project(groups, width=5, seed=3)
    assert a["text"].shape == (4, 5) and a["audio"].shape == (4, 5)
    np.testing.assert_array_equal(a["text"], b["text"])


def test_subsample_and_tsne():
    idx = A.subsample(100, 30, seed=1)
    assert len(idx) == 30 and len(set(idx)) == 30 and np.all(np.diff(idx) > 0)
    assert np.array_equal(A.subsample(10, 30), np.arange(10))
    x = np.r_[_cluster(E1, 15), _cluster(E2, 15, seed=1)]
    xy = A.tsne_2d(x, seed=0)
    assert xy.shape == (30, 2)
    np.testing.assert_allclose(xy, A.tsne_2d(x, seed=0))


def test_headline_picks_the_three_numbers_per_kind():
    y = np.linspace(-3, 3, 40)
    s = A.alignment_summary({"text": _cluster(E1, 40), "audio": _cluster(E2, 40, seed=1)}, y)
    h = A.headline({"tokens": s, "features": s})
    assert list(h) == [f"{k} {n}" for k in ("tokens", "features")
                       for n in ("modality_gap", "silhouette_modality", "silhouette_polarity")]
    assert h["tokens silhouette_polarity"] == s["silhouette_polarity"]["mean"]


# ----------------------------------------------------------------------------- projected: where the loss acts

def _trainer(cfg):
    from miar.data import build_splits
    from miar.train import Trainer

    splits = build_splits(cfg)
    return Trainer(cfg, splits["train"].dims, len(splits["train"]), torch.device("cpu")), splits["test"]


@pytest.mark.parametrize("delta", [{}, {"model": {"contrast_on": "pooled"},
                                       "loss": {"pairs": "all", "contrastive": "supcon"}}])
def test_projected_are_the_loss_inputs(tiny_cfg, delta):
    """Recomputing the contrastive loss from the returned projections gives the trainer's term on the same batch."""
    from miar import config as C
    from miar.data import iterate
    from miar.losses import contrastive_loss
    from miar.model import contrastive_pairs

    cfg = C.merge(tiny_cfg, delta)
    trainer, ds = _trainer(cfg)
    model = trainer.model.eval()
    vectors = A.model_outputs(model, ds, batch_size=len(ds))  # one batch: the loss's in-batch negatives
    batch = next(iterate(ds, len(ds)))
    with torch.no_grad():
        out = model(batch)
        _, terms = trainer.loss(out, batch.y)
    assert vectors.acts_on == cfg.model.contrast_on
    assert list(vectors.projected) == list(out.embeddings)
    for k, v in vectors.projected.items():
        assert v.shape == (len(ds), cfg.model.proj_dim)
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)  # unit rows, as the loss makes them
    with torch.no_grad():  # the head applied directly to its input
        head_in = (out.tokens if cfg.model.contrast_on == "tokens"
                   else torch.stack([out.features[m] for m in vectors.projected], 1))  # (B, K, d)
        direct = torch.nn.functional.normalize(model.contrast(head_in), dim=-1)  # (B, K, p)
    for i, v in enumerate(vectors.projected.values()):
        np.testing.assert_allclose(v, direct[:, i].numpy(), atol=1e-6)
    pairs = contrastive_pairs(tuple(vectors.projected), cfg.loss.pairs)
    emb = {k: torch.from_numpy(v).float() for k, v in vectors.projected.items()}
    with torch.no_grad():
        again, _ = contrastive_loss(emb, pairs, trainer.temp, cfg.loss.contrastive, labels=batch.y)
    assert float(again) == pytest.approx(float(terms["contrastive"]), rel=1e-5, abs=1e-6)
    numbers = A.alignment_numbers(vectors, cfg.loss.pairs)
    assert list(numbers) == list(A.KINDS)
    used = list(dict.fromkeys(k for p in pairs for k in p))
    assert numbers["projected"]["groups"] == [k for k in vectors.projected if k in used]
    assert numbers["projected"]["acts_on"] == cfg.model.contrast_on
    assert numbers["projected"]["loss_pairs"] == [f"{a}|{b}" for a, b in pairs]
    assert 0 <= numbers["projected"]["modality_gap"] <= 2
    if cfg.model.contrast_on == "tokens" and cfg.loss.pairs == "modal":  # the fused token is not contrasted
        assert numbers["projected"]["groups"] == ["text", "audio", "vision"]
        assert "fused" in numbers["tokens"]["groups"]


@pytest.mark.parametrize("name", ["text_only", "early_fusion"])
def test_no_projected_group_without_a_contrastive_head(tiny_cfg, name):
    from miar import config as C

    cfg = C.merge(tiny_cfg, {"model": {"name": name}})
    trainer, ds = _trainer(cfg)
    vectors = A.model_outputs(trainer.model, ds)
    assert vectors.projected == {} and vectors.acts_on is None
    numbers = A.alignment_numbers(vectors, cfg.loss.pairs)
    assert "projected" not in numbers and set(numbers) == {"tokens", "features"}
    assert "projected" not in A.vector_groups(vectors, cfg.loss.pairs)
    assert not any(k.startswith("projected") for k in A.headline(numbers))
