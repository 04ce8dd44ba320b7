"""Splits whose text modality is a backbone's token sequence (``model.text_backbone`` != ``none``).

The other modalities load as usual (standardized with training statistics); the text comes from each
source's transcripts: MOSI's ``transcripts.csv``, an MMSA pickle's ``raw_text``, or, for synthetic data,
sentences generated from the label (:func:`synthetic_texts`: word counts with MOSI's length distribution,
sentiment words in proportion to the label), then it is tokenised once (:mod:`miar.data.tokens`).

MMSA pickles also hold ``text_bert``: token ids and attention mask from the ``bert-base-uncased`` tokenizer.
MiniLM's ``vocab.txt`` is that vocabulary (30522 entries, same ids; its sha256 is :data:`BERT_UNCASED_VOCAB`),
so with ``minilm`` those ids feed the backbone directly (:func:`pickle_tokens`); MPNet's vocabulary differs
(``<s>`` ``</s>``, 30527 entries), so for ``mpnet`` (or any backbone whose vocabulary file has another
checksum) ``raw_text`` is re-tokenised.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from miar.data.batch import DataError, ModalDataset, ordered
from miar.data.mosi_files import read_mosi
from miar.data.text_features import default_cache_dir
from miar.data.tokens import attach_text, attach_tokens, backbone_dir

BERT_UNCASED_VOCAB = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"  # vocab.txt sha256

POSITIVE = ("good", "great", "love", "enjoyed", "amazing", "funny", "best", "nice", "liked", "awesome")
NEGATIVE = ("bad", "boring", "hate", "awful", "worst", "stupid", "terrible", "disappointing", "weak", "dull")
NEUTRAL = ("the", "movie", "it", "was", "and", "i", "um", "so", "really", "just", "like", "that", "this", "a",
           "of", "you", "plot", "actors", "kind", "know", "then", "there", "thing", "but", "about", "scene")
MOSI_WORDS = (12.0, 0.75)  # log-normal word count (median, sigma): ~15 tokens on average, ~120 at most


def synthetic_texts(ids: list[str], y: np.ndarray, seed: int = 0) -> dict[str, str]:
    """A deterministic sentence per utterance: MOSI-like length, sentiment words drawn with probability
    rising with ``|y|`` and the label's sign."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, label in zip(ids, y.tolist()):
        n = int(np.clip(round(rng.lognormal(np.log(MOSI_WORDS[0]), MOSI_WORDS[1])), 1, 110))
        p_sent = min(abs(label) / 3.0, 1.0) * 0.4
        pool = POSITIVE if label >= 0 else NEGATIVE
        words = [pool[rng.integers(len(pool))] if rng.random() < p_sent else NEUTRAL[rng.integers(len(NEUTRAL))]
                 for _ in range(n)]
        out[i] = " ".join(words)
    return out


def cache_dir_for(cfg, root: Path) -> Path:
    """Where token ids (and extracted backbones) are cached: the feature cache
    (:func:`miar.data.text_features.default_cache_dir`), whatever the data source."""
    return default_cache_dir()


def texts_for(cfg, splits: dict[str, ModalDataset], root: Path) -> dict[str, str]:
    """Utterance id -> transcript for every utterance of ``splits``."""
    d = cfg.data
    if d.source == "mosi":
        table = read_mosi(root)
        return dict(zip(table.ids, table.transcripts))
    if d.source == "synthetic":
        return {k: v for ds in splits.values() for k, v in synthetic_texts(ds.ids, ds.y.numpy(), d.synthetic.seed
                                                                             + len(ds)).items()}
    if d.source == "mmsa":
        out = {}
        for part, ds in splits.items():
            raw = ds.meta.get("raw_text")
            if raw is None:
                raise DataError(f"{d.path}: split '{part}' has no 'raw_text'; the text backbone needs transcripts")
            out.update(zip(ds.ids, raw))
        return out
    raise DataError(f"data.source={d.source}: has no transcripts for model.text_backbone={cfg.model.text_backbone}")


def pickle_tokens(splits: dict[str, ModalDataset], folder: Path) -> dict[str, tuple] | None:
    """Each split's MMSA ``text_bert`` ids and mask as ``(n, L, 1)`` / ``(n, L)`` tensors when every split has
    them and the backbone in ``folder`` uses bert-base-uncased's vocabulary; else None (re-tokenise)."""
    vocab = folder / "vocab.txt"
    if any(ds.meta.get("text_bert") is None for ds in splits.values()) or not vocab.is_file() \
            or hashlib.sha256(vocab.read_bytes()).hexdigest() != BERT_UNCASED_VOCAB:
        return None
    out = {}
    for part, ds in splits.items():
        tb = torch.from_numpy(np.asarray(ds.meta["text_bert"], dtype=np.int64))  # (n, 2, T) ids, mask
        mask = tb[:, 1] > 0  # (n, T)
        t = max(int((mask.long() * torch.arange(1, mask.shape[1] + 1)).amax()), 1)
        mask = mask[:, :t]
        if not mask.any(1).all():
            raise DataError(f"{ds.meta.get('source')}: split '{part}' has an utterance with no text token in "
                            f"'text_bert' (e.g. {ds.ids[int((~mask.any(1)).nonzero()[0])]!r})")
        out[part] = ((tb[:, 0, :t] * mask).unsqueeze(-1), mask)
    return out


def build_text_splits(cfg, build_splits, root: Path) -> dict[str, ModalDataset]:
    """``build_splits(cfg)`` for the other modalities, then the text as token ids (see the module docstring);
    ``root``: the data root (``miar.data.data_root(cfg.data.path)``)."""
    d = cfg.data
    if d.context != 0:
        raise DataError("model.text_backbone needs data.context=0 (token sequences cannot share a window's axis)")
    others = tuple(m for m in d.modalities if m != "text") or ("audio",)  # a loader needs one; dropped below
    base = replace(cfg, data=replace(d, modalities=others), model=replace(cfg.model, text_backbone="none"))
    splits = build_splits(base)
    name, cache, keep = cfg.model.text_backbone, cache_dir_for(cfg, root), ordered(tuple(d.modalities))
    direct = pickle_tokens(splits, backbone_dir(name, cache)) if d.source == "mmsa" else None
    if direct is not None:
        return attach_tokens(splits, direct, name, keep, "text_bert ids from the pickle")
    return attach_text(splits, texts_for(cfg, splits, root), name, cache, keep)


__all__ = ["build_text_splits", "cache_dir_for", "synthetic_texts", "texts_for"]
