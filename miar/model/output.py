"""What every model returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class ModelOutput:
    """A model's prediction and what the loss and the diagnostics read.

    ``embeddings`` feed the contrastive loss; ``aux`` holds named extra loss terms, already weighted
    (e.g. MISA's); ``features`` are pooled per-modality features before interaction; ``diagnostics`` are
    per-token weights a model exposes (name -> (B, K), e.g. MIAR's token weights): the trainer records the mean
    of each over the test split as ``<name>_mean_test`` without knowing what they are.
    """

    pred: Tensor  # (B,)
    tokens: Tensor | None = None  # (B, K, d)
    token_names: tuple[str, ...] = ()
    embeddings: dict[str, Tensor] = field(default_factory=dict)  # token name -> (B, p)
    features: dict[str, Tensor] = field(default_factory=dict)  # modality -> (B, d)
    aux: dict[str, Tensor] = field(default_factory=dict)  # loss-term name -> scalar
    diagnostics: dict[str, Tensor] = field(default_factory=dict)  # name -> (B, K) per-token weights
