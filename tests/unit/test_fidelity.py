"""MIAR fidelity variants (issue 15, point 5): the contrastive term on the pooled unimodal features before the
interaction instead of on the feature tokens."""

import pytest
import torch
from batches import DIMS, make_batch  # noqa: I001 (tests/batches.py)

from miar import config as C
from miar.model import build_model
from miar.train import Trainer


def _cfg(**model):
    return C.merge(C.Config(), {"model": {"d_model": 16, "n_heads": 2, "head_hidden": 8, **model}})


@pytest.mark.parametrize("scheme", ["query", "directed", "joint"])
def test_pooled_contrast_keys_the_embeddings_by_modality(scheme):
    torch.manual_seed(0)
    model = build_model(_cfg(token_scheme=scheme, contrast_on="pooled"), DIMS)
    out = model(make_batch())
    assert tuple(out.embeddings) == ("text", "audio", "vision")
    assert all(e.shape == (5, 32) for e in out.embeddings.values())
    p = model.contrast(torch.stack([out.features[m] for m in DIMS], 1))  # (B, M, p): the same projection
    assert torch.allclose(out.embeddings["audio"], p[:, 1])


def test_pooled_contrast_trains_and_its_gradient_skips_the_interaction():
    cfg = _cfg(contrast_on="pooled")
    trainer = Trainer(cfg, DIMS, n_train=5, device=torch.device("cpu"))
    model, batch = trainer.model, make_batch()
    out = model(batch)
    _, terms = trainer.loss(out, batch.y)
    assert "contrastive" in terms and torch.isfinite(terms["contrastive"]) and terms["contrastive"] > 0
    model.zero_grad()
    sum(e.sum() for e in out.embeddings.values()).backward()  # what the contrastive term sees
    assert all(p.grad is None or not p.grad.any() for p in model.interact.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.encoders["audio"].parameters())


def test_default_stays_on_the_tokens_and_out_of_the_dumped_config():
    cfg = _cfg()
    assert cfg.model.contrast_on == "tokens" and "contrast_on" not in C.dump(cfg)
    assert "contrast_on: pooled" in C.dump(_cfg(contrast_on="pooled"))
    out = build_model(cfg, DIMS)(make_batch())
    assert tuple(out.embeddings) == out.token_names
