"""The CPU dropout and the explicit attention it feeds (``miar.model.layers``)."""

import pytest
import torch
import torch.nn.functional as F

from miar.model.layers import Dropout, dropout, explicit_attention


def test_dropout_rate_scale_and_gradient():
    torch.manual_seed(0)
    x = torch.ones(200_000, requires_grad=True)
    y = dropout(x, 0.3)
    kept = y.detach() != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005  # P(keep) = 1 - round(0.3 * 65536) / 65536
    scale = 65536 / (65536 - round(0.3 * 65536))
    assert torch.allclose(y.detach()[kept], torch.full((int(kept.sum()),), scale))
    assert abs(y.detach().mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x * keep)/dx = keep


def test_dropout_is_seeded_and_identity_when_off():
    x = torch.randn(4, 33, 7)
    torch.manual_seed(1)
    a = dropout(x, 0.1)
    torch.manual_seed(1)
    assert torch.equal(a, dropout(x, 0.1))
    assert not torch.equal(a, dropout(x, 0.1))  # the stream moves on
    assert dropout(x, 0.1, training=False) is x and dropout(x, 0.0) is x
    m = Dropout(0.1).eval()
    assert m(x) is x and "p=0.1" in repr(m)


def test_dropout_masks_are_uncorrelated_across_elements():
    torch.manual_seed(2)
    keep = (dropout(torch.ones(400_000), 0.5) != 0).float()
    a, b = keep[:-1] - keep.mean(), keep[1:] - keep.mean()
    assert abs((a * b).mean().item() / keep.var().item()) < 0.01  # neighbours (same 64-bit word) too


@pytest.mark.parametrize("full_rows", [True, False])
def test_explicit_attention_matches_sdpa_without_dropout(full_rows):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 6, 4), torch.randn(2, 3, 6, 4)
    allow = torch.rand(2, 1, 5, 6) > 0.3
    allow[..., 0] = True
    if not full_rows:
        allow[1, 0, 2] = False  # a query that may attend to nothing gives 0, as SDPA
    ours = explicit_attention(q, k, v, allow, 0.0)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=allow)
    ref = torch.nan_to_num(ref)  # SDPA's fully-masked rows (NaN or 0 by version)
    assert torch.allclose(ours, ref, atol=1e-5)
    if not full_rows:
        assert torch.equal(ours[1, :, 2], torch.zeros(3, 4))


def test_explicit_attention_drops_weights():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 200, 8), torch.randn(1, 1, 200, 8)
    v = torch.ones(1, 1, 200, 1)
    out = explicit_attention(q, k, v, None, 0.5)  # each row: sum of kept weights / 0.5
    assert abs(out.mean().item() - 1.0) < 0.1 and out.std().item() > 0.05
