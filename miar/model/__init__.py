"""Models: MIAR and the baselines, all returning :class:`ModelOutput`. ``build_model`` reads the config."""

from __future__ import annotations

from torch import nn

from miar.config import Config, ConfigError
from miar.model.miar import MIAR, ModelOutput, contrastive_pairs


def build_model(cfg: Config, dims: dict[str, int]) -> nn.Module:
    """The model named by ``cfg.model.name`` for input feature ``dims`` (modality -> width)."""
    m = cfg.model
    if m.name == "miar":
        if len(dims) < 2:
            raise ConfigError("model miar needs at least two modalities (data.modalities)")
        return MIAR(dims, d=m.d_model, n_heads=m.n_heads, n_layers=m.n_layers, encoder=m.encoder,
                    norm=m.norm, dropout=m.dropout, interaction=m.interaction,
                    token_scheme=m.token_scheme, n_tokens=m.n_tokens, gate=m.gate,
                    head_hidden=m.head_hidden, proj_dim=m.proj_dim, max_len=m.max_len)
    from miar.model.baselines import build_baseline  # noqa: PLC0415 (baselines are optional reading)
    return build_baseline(cfg, dims)


__all__ = ["MIAR", "ModelOutput", "build_model", "contrastive_pairs"]
