"""A pretrained text encoder (MiniLM or MPNet, BERT-family) in front of any model's text modality.

:class:`TextBackbone` splits the encoder at layer ``split``: *lower* = embeddings and layers ``[0, split)``,
frozen and always in eval mode; *upper* = layers ``[split, n)``, which train. ``model.finetune``:
``frozen`` (split = n: nothing trains), ``top:K`` (split = n - K), ``full`` (split = 0, embeddings train too).
Its input is either token ids (integer ``(B, L, 1)``: lower then upper) or the lower part's output
(float ``(B, L, H)``: upper only). :func:`cache_lower` computes that output once per run for every split,
so a ``top:K`` epoch runs only the K trainable layers; it is exact (tests: cached lower + upper equals the
whole encoder to float tolerance) because the lower part is frozen and dropout-free (eval mode).

:class:`TextFront` puts the backbone before a model: the text modality's token ids become the backbone's
last hidden states ``(B, L, H)``, which the model's own text :class:`~miar.model.encoders.ModalityEncoder`
projects, encodes and pools like any features; every model works unchanged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import Tensor, nn

from miar.data.batch import Batch, ModalDataset
from miar.data.text_features import offline
from miar.data.tokens import is_token_ids
from miar.errors import ConfigError


def trainable_layers(finetune: str, n_layers: int) -> int:
    """How many of the top layers train for ``model.finetune`` (``frozen`` 0, ``top:K`` K, ``full`` n)."""
    if finetune == "frozen":
        return 0
    if finetune == "full":
        return n_layers
    k = int(finetune.removeprefix("top:"))
    if not 1 <= k <= n_layers:
        raise ConfigError(f"model.finetune: {finetune!r} but the backbone has {n_layers} layers")
    return k


class TextBackbone(nn.Module):
    """A HF ``BertModel`` or ``MPNetModel`` split at layer ``split``; ``train_embeddings`` (``full``)
    also trains the embeddings, so nothing can be cached."""

    def __init__(self, hf: nn.Module, split: int, train_embeddings: bool = False):
        super().__init__()
        self.kind = hf.config.model_type  # "bert" | "mpnet"
        if self.kind not in ("bert", "mpnet"):
            raise ConfigError(f"text backbone of type {self.kind!r} is not supported (bert, mpnet)")
        self.config = hf.config
        self.embeddings, self.layers = hf.embeddings, hf.encoder.layer
        self.rel_bias = hf.encoder.relative_attention_bias if self.kind == "mpnet" else None
        self._encoder = [hf.encoder]  # a plain reference (not a submodule): MPNet's position-bias function
        self.split, self.train_embeddings = split, train_embeddings
        for p in self.frozen_parameters():
            p.requires_grad_(False)
        self.register_state_dict_post_hook(_drop_frozen)
        self.register_load_state_dict_pre_hook(_fill_frozen)
        self.train()

    @property
    def hidden(self) -> int:
        return int(self.config.hidden_size)

    @property
    def cacheable(self) -> bool:
        """True when the lower part is frozen, so its output can be computed once per run."""
        return not self.train_embeddings

    def frozen_modules(self) -> list[nn.Module]:
        mods = [] if self.train_embeddings else [self.embeddings]
        if self.rel_bias is not None and not self.train_embeddings:
            mods.append(self.rel_bias)  # shared by every layer, the frozen ones included
        return mods + list(self.layers[:self.split])

    def frozen_parameters(self):
        return [p for m in self.frozen_modules() for p in m.parameters()]

    def upper_layers(self) -> list[nn.Module]:
        return list(self.layers[self.split:])

    def train(self, mode: bool = True) -> "TextBackbone":
        super().train(mode)
        for m in self.frozen_modules():
            m.eval()  # frozen parts are deterministic (no dropout): what cache_lower computes, exactly
        return self

    def _attn(self, h: Tensor, mask: Tensor):
        """The attention mask and (MPNet) relative position bias for steps ``h`` (B, L, H)."""
        from transformers.masking_utils import create_bidirectional_mask

        m = create_bidirectional_mask(config=self.config, inputs_embeds=h, attention_mask=mask.long())
        bias = self._position_bias(h) if self.rel_bias is not None else None
        return m, bias

    def _position_bias(self, h: Tensor) -> Tensor:
        return self._encoder[0].compute_position_bias(h)  # (B, heads, L, L), from self.rel_bias

    def _run(self, h: Tensor, mask: Tensor, layers) -> Tensor:
        if not layers:
            return h
        attn, bias = self._attn(h, mask)
        for layer in layers:
            out = layer(h, attn) if bias is None else layer(h, attn, bias)
            h = out[0] if isinstance(out, tuple) else out  # (B, L, H)
        return h

    def lower(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Embeddings and the frozen layers: ``(B, L)`` ids -> ``(B, L, H)``; no gradient unless ``full``."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.train_embeddings):
            kw = {"token_type_ids": torch.zeros_like(ids)} if self.kind == "bert" else {}
            h = self.embeddings(input_ids=ids, **kw)  # (B, L, H)
            return self._run(h, mask, list(self.layers[:self.split]))  # split = 0 when the embeddings train

    def upper(self, h: Tensor, mask: Tensor) -> Tensor:
        return self._run(h, mask, self.upper_layers())  # (B, L, H)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Token ids ``(B, L, 1)`` or cached lower states ``(B, L, H)`` -> last hidden states ``(B, L, H)``,
        zero at padded steps."""
        h = self.lower(x.squeeze(-1), mask) if is_token_ids(x) else x
        return self.upper(h, mask) * mask.unsqueeze(-1).to(h.dtype)


def _frozen_keys(module: TextBackbone, prefix: str) -> dict[str, Tensor]:
    names = {id(p) for p in module.frozen_parameters()}
    return {prefix + n: p for n, p in module.named_parameters() if id(p) in names}


def _drop_frozen(module: TextBackbone, state: dict, prefix: str, local_metadata) -> None:
    """State dicts leave the frozen weights out: they are the installed package's, unchanged by training, and
    ~90% of MiniLM (checkpoints each epoch and best-epoch copies stay small)."""
    for key in _frozen_keys(module, prefix):
        state.pop(key, None)


def _fill_frozen(module: TextBackbone, state: dict, prefix: str, *args) -> None:
    """Loading such a state dict: the frozen weights are the ones the builder loaded from the package."""
    for key, p in _frozen_keys(module, prefix).items():
        state.setdefault(key, p.detach())


class TextFront(nn.Module):
    """``backbone`` turns the text modality into hidden states, then ``model`` runs on the batch."""

    def __init__(self, backbone: TextBackbone, model: nn.Module):
        super().__init__()
        self.backbone, self.model = backbone, model

    def forward(self, batch: Batch):
        states = self.backbone(batch.x["text"], batch.mask["text"])  # (B, L, H)
        return self.model(dataclasses.replace(batch, x={**batch.x, "text": states}))


def load_hf(name: str, cache_dir: str | Path) -> nn.Module:
    """The pretrained backbone ``name`` from its installed package (offline; one line if missing)."""
    from miar.data.tokens import backbone_dir

    folder = backbone_dir(name, cache_dir)
    offline()
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the per-run "Loading weights" bar would fill every notebook

    attn = "sdpa" if name == "minilm" else "eager"  # MPNet has no SDPA path in transformers
    return AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation=attn).float()


@torch.no_grad()
def cache_lower(model: nn.Module, splits: dict[str, ModalDataset], device: torch.device | str = "cpu",
                batch_size: int = 64) -> dict[str, ModalDataset]:
    """Replace each split's text token ids by the frozen lower part's output ``(N, L, H)`` float32, computed
    once (length-sorted batches). A model without a cacheable backbone gets its splits back unchanged."""
    bb = getattr(model, "backbone", None)
    if not isinstance(bb, TextBackbone) or not bb.cacheable:
        return splits
    was = bb.training
    bb.eval()
    out = {}
    for part, ds in splits.items():
        if "text" not in ds.x or not is_token_ids(ds.x["text"]):
            out[part] = ds
            continue
        ids, mask = ds.x["text"].squeeze(-1), ds.mask["text"]  # (N, L), (N, L)
        states = torch.zeros(*ids.shape, bb.hidden)  # (N, L, H)
        order = torch.argsort(mask.sum(1), stable=True)
        for a in range(0, len(order), batch_size):
            idx = order[a:a + batch_size]
            t = int(mask[idx].sum(1).max())
            m = mask[idx, :t].to(device)
            states[idx, :t] = (bb.lower(ids[idx, :t].to(device), m) * m.unsqueeze(-1)).float().cpu()
        out[part] = dataclasses.replace(ds, x={**ds.x, "text": states}, meta={**ds.meta, "text_cached": bb.split})
    bb.train(was)
    return out





def backbone_groups(model: nn.Module, extra: list, lr: float, backbone_lr: float, layer_decay: float) -> list | None:
    """AdamW parameter groups for a model with a :class:`TextBackbone` (``None`` without one): the model's
    own parameters and ``extra`` at ``lr``; the backbone's trainable layer i from the top at
    ``backbone_lr * layer_decay**i`` (the embeddings, when they train, one step below the lowest layer)."""
    bb = getattr(model, "backbone", None)
    if not isinstance(bb, TextBackbone):
        return None
    if not 0 < layer_decay <= 1:
        raise ConfigError(f"train.layer_decay: {layer_decay!r} must be in (0, 1]")
    if backbone_lr < 0:
        raise ConfigError(f"train.backbone_lr: {backbone_lr!r} must be >= 0")
    in_backbone = {id(p) for p in bb.parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in in_backbone and p.requires_grad] + extra,
               "lr": lr}]
    upper = bb.upper_layers()
    for depth, layer in enumerate(reversed(upper)):
        groups.append({"params": [p for p in layer.parameters() if p.requires_grad],
                       "lr": backbone_lr * layer_decay ** depth})
    if bb.train_embeddings:
        emb = list(bb.embeddings.parameters()) + (list(bb.rel_bias.parameters()) if bb.rel_bias is not None else [])
        groups.append({"params": emb, "lr": backbone_lr * layer_decay ** len(upper)})
    return [g for g in groups if g["params"]]
__all__ = ["TextBackbone", "TextFront", "backbone_groups", "cache_lower", "load_hf", "trainable_layers"]
