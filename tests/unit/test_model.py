"""MIAR's shapes and gradients under every token scheme and ablation flag."""

import itertools

import pytest
import torch
from batches import DIMS, make_batch  # noqa: I001 (tests/batches.py)

from miar import config as C
from miar.model import build_model, contrastive_pairs
from miar.model.interaction import JointTokens
from miar.model.layers import masked_mean, pool


def build(**model):
    cfg = C.merge(C.Config(), {"model": {"d_model": 16, "n_heads": 2, "head_hidden": 8, **model}})
    return build_model(cfg, DIMS)


def test_masked_mean_and_pool_by_hand():
    x = torch.tensor([[[1.0], [3.0], [100.0]]])  # (1, 3, 1)
    mask = torch.tensor([[True, True, False]])
    assert masked_mean(x, mask).item() == 2.0
    assert pool(x, mask, torch.tensor([[False, True, False]])).item() == 3.0


@pytest.mark.parametrize("scheme,interaction,n_tokens,gate,norm,encoder", [
    combo for combo in itertools.product(["query", "directed", "joint"], [True, False], [3, 4], [True, False],
                                         ["layernorm"], ["transformer"])
] + [("query", True, 4, False, n, e) for n in ["batchnorm", "none"] for e in ["lstm", "none"]])
def test_shapes_and_gradients_reach_every_encoder(scheme, interaction, n_tokens, gate, norm, encoder):
    model = build(token_scheme=scheme, interaction=interaction, n_tokens=n_tokens, gate=gate,
                  norm=norm, encoder=encoder)
    out = model(make_batch())
    k = n_tokens if (scheme == "directed" and interaction) else 3 + (n_tokens == 4)
    assert out.pred.shape == (5,)
    assert out.tokens.shape == (5, k, 16) and len(out.token_names) == k
    assert set(out.embeddings) == set(out.token_names)
    assert ("gate" in out.diagnostics) == gate
    if gate:
        assert torch.allclose(out.diagnostics["gate"].sum(1), torch.ones(5))
    loss = out.pred.sum() + sum(e.sum() for e in out.embeddings.values())
    loss.backward()
    for m in DIMS:
        g = model.encoders[m].proj.lin.weight.grad
        assert g is not None and g.abs().sum() > 0, f"no gradient reaches the {m} projection"


@pytest.mark.parametrize("scheme,encoder", [("query", "transformer"), ("directed", "transformer"),
                                            ("joint", "transformer"), ("query", "lstm")])
def test_padding_does_not_change_predictions(scheme, encoder):
    model = build(token_scheme=scheme, encoder=encoder).eval()
    b = make_batch()
    ref = model(b).pred
    b.x["audio"][0, 4:] = 1e3  # garbage in padded steps
    assert torch.allclose(model(b).pred, ref, atol=1e-5)


def test_context_target_marker_is_used():
    model = build().eval()
    b = make_batch(context=True)
    ref = model(b).pred
    b.target = torch.roll(b.target, 1, dims=1)  # predict a different utterance
    assert not torch.allclose(model(b).pred, ref)


def test_h3_visibility_mask_by_hand():
    jt = JointTokens(("text", "audio"), True, 8, 2, 1, 0.0)
    masks = {"text": torch.tensor([[True, False]]), "audio": torch.tensor([[True]])}
    allow = jt._allow(masks)[0, 0]  # (L, L), L = 3 queries + 2 text + 1 audio
    q_text, q_audio, q_fused = allow[0], allow[1], allow[2]
    assert q_text.tolist() == [True, False, False, False, False, True]  # itself + audio
    assert q_audio.tolist() == [False, True, False, True, False, False]  # itself + real text
    assert q_fused.tolist() == [False, False, True, True, False, True]  # itself + everything real
    assert allow[5].tolist() == [False, False, False, False, False, True]  # audio step: own modality


def test_contrastive_pairs():
    assert contrastive_pairs(("text", "audio", "vision", "fused"), "modal") == [
        ("text", "audio"), ("text", "vision"), ("audio", "vision")]
    assert len(contrastive_pairs(("text", "audio", "vision", "fused"), "all")) == 6


def test_miar_needs_two_modalities():
    cfg = C.merge(C.Config(), {"data": {"modalities": ["text"]}})
    with pytest.raises(C.ConfigError, match="at least two modalities"):
        build_model(cfg, {"text": 7})
