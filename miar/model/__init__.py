"""Models: MIAR and the baselines, all returning :class:`ModelOutput`; :func:`build_model` reads the config
(:mod:`miar.model.build`) and composes per-modality encoders (:mod:`miar.model.encoders`) with each model's parts."""

from __future__ import annotations

from miar.model.build import build_encoders, build_model, upgrade_state_dict
from miar.model.miar import MIAR, contrastive_pairs
from miar.model.output import ModelOutput

__all__ = ["MIAR", "ModelOutput", "build_encoders", "build_model", "contrastive_pairs", "upgrade_state_dict"]
