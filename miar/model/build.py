"""The builders: the only model code that reads the config. Each makes the per-modality encoders
(:class:`~miar.model.encoders.ModalityEncoder`, one stack for every model) and the model's other parts,
then composes them; the modules take modules and plain numbers (TorchMultimodal's
``LateFusion(encoders, fusion, head)`` is the pattern)."""

from __future__ import annotations

from torch import nn

from miar.config import Config, ConfigError, ModelConfig
from miar.data.batch import ordered
from miar.model.baselines import BCLSTM, EarlyFusion, LateFusion, Unimodal
from miar.model.encoders import ContextEncoder, ModalityEncoder, Projection
from miar.model.interaction import build_interaction
from miar.model.layers import mlp_head
from miar.model.miar import MIAR, TokenGate
from miar.model.misa import MISA
from miar.model.mult import mult_from_hparams


def build_context(m: ModelConfig) -> ContextEncoder:
    return ContextEncoder(m.d_model, m.encoder, m.n_layers, m.n_heads, m.dropout, m.max_len)


def build_encoders(m: ModelConfig, dims: dict[str, int], contextual: bool = True) -> nn.ModuleDict:
    """One :class:`ModalityEncoder` per modality of ``dims``, in the fixed order; ``contextual=False``:
    projection and pooling only (early fusion encodes after concatenating)."""
    return nn.ModuleDict({k: ModalityEncoder(Projection(dims[k], m.d_model, m.norm, m.dropout),
                                             build_context(m) if contextual else None)
                          for k in ordered(dims)})


def build_miar(m: ModelConfig, dims: dict[str, int]) -> MIAR:
    encoders = build_encoders(m, dims)
    interaction = build_interaction(m.token_scheme, m.interaction, tuple(encoders), m.n_tokens == 4,
                                    m.d_model, m.n_heads, m.n_layers, m.dropout)
    head = mlp_head(interaction.n_tokens * m.d_model, m.head_hidden, m.dropout)
    contrast = nn.Sequential(nn.Linear(m.d_model, m.d_model), nn.GELU(), nn.Linear(m.d_model, m.proj_dim))
    return MIAR(encoders, interaction, head, contrast, TokenGate(m.d_model) if m.gate else None, m.contrast_on)


def build_text_only(m: ModelConfig, dims: dict[str, int]) -> Unimodal:
    if "text" not in dims:
        raise ConfigError("model text_only needs the text modality (data.modalities)")
    return Unimodal(build_encoders(m, {"text": dims["text"]}), mlp_head(m.d_model, m.head_hidden, m.dropout))


def build_early_fusion(m: ModelConfig, dims: dict[str, int]) -> EarlyFusion:
    encoders = build_encoders(m, dims, contextual=False)
    return EarlyFusion(encoders, nn.Linear(len(encoders) * m.d_model, m.d_model), build_context(m),
                       mlp_head(m.d_model, m.head_hidden, m.dropout))


def build_late_fusion(m: ModelConfig, dims: dict[str, int]) -> LateFusion:
    encoders = build_encoders(m, dims)
    return LateFusion(encoders, nn.ModuleDict({k: mlp_head(m.d_model, m.head_hidden, m.dropout) for k in encoders}))


def build_misa(m: ModelConfig, dims: dict[str, int]) -> MISA:
    return MISA(build_encoders(m, dims), n_heads=m.n_heads, dropout=m.dropout, sim_weight=m.misa_sim_weight,
                diff_weight=m.misa_diff_weight, recon_weight=m.misa_recon_weight)


BUILDERS = {
    "miar": build_miar,
    "text_only": build_text_only,
    "early_fusion": build_early_fusion,
    "late_fusion": build_late_fusion,
    "bclstm": lambda m, dims: BCLSTM(dims, d=m.d_model, dropout=m.dropout, head_hidden=m.head_hidden),
    "mult": lambda m, dims: mult_from_hparams(dims, m.d_model, m.n_heads, m.n_layers, m.dropout),
    "misa": build_misa,
}
MULTIMODAL = ("miar", "mult", "misa")  # need two modalities or more


def build_model(cfg: Config, dims: dict[str, int]) -> nn.Module:
    """The model named by ``cfg.model.name`` for input feature ``dims`` (modality -> width)."""
    m = cfg.model
    if not dims:
        raise ConfigError(f"model {m.name} needs at least one modality (data.modalities)")
    if m.name in MULTIMODAL and len(dims) < 2:
        raise ConfigError(f"model {m.name} needs at least two modalities (data.modalities)")
    if m.name not in BUILDERS:  # pragma: no cover - the config's Literal rejects other names
        raise ConfigError(f"model.name: unknown model {m.name!r}")
    if m.text_backbone != "none" and "text" in dims:
        return build_text_front(cfg, dims)
    return BUILDERS[m.name](m, dims)


def build_text_front(cfg: Config, dims: dict[str, int]) -> nn.Module:
    """The pretrained backbone (loaded from its installed package: the one read a builder does) split by
    ``model.finetune``, in front of the model built for its hidden width (:mod:`miar.model.text_backbone`)."""
    from miar.data import data_root
    from miar.data.text_splits import cache_dir_for
    from miar.model.text_backbone import TextBackbone, TextFront, load_hf, trainable_layers

    m = cfg.model
    hf = load_hf(m.text_backbone, cache_dir_for(cfg, data_root(cfg.data.path)))
    n = int(hf.config.num_hidden_layers)
    backbone = TextBackbone(hf, split=n - trainable_layers(m.finetune, n), train_embeddings=m.finetune == "full")
    return TextFront(backbone, BUILDERS[m.name](m, {**dims, "text": backbone.hidden}))


_LEGACY = (("proj.", "encoders.{}.proj."), ("enc.", "encoders.{}.context."))  # MIAR before the shared encoder


def upgrade_state_dict(state: dict) -> dict:
    """A MIAR state dict saved before the shared :class:`ModalityEncoder` (keys ``proj.<m>.*``, ``enc.<m>.*``,
    ``gate.*``) under today's names; the tensors are the same, so a saved model predicts as it did."""
    out = {}
    for key, value in state.items():
        for old, new in _LEGACY:
            if key.startswith(old):
                modality, rest = key[len(old):].split(".", 1)
                key = new.format(modality) + rest
                break
        else:
            key = "token_gate." + key[len("gate."):] if key.startswith("gate.") else key
        out[key] = value
    return out
