"""Tiny, randomly initialised BERT and MPNet backbones saved like the real packages (weights + tokenizer in
one folder), built offline in a second: tests swap them in for MiniLM and MPNet (``use_tiny``)."""

from __future__ import annotations

from pathlib import Path

import torch

from miar.data.text_splits import NEGATIVE, NEUTRAL, POSITIVE

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = sorted(set(POSITIVE + NEGATIVE + NEUTRAL)) + ["hello", "world", "movie", "yes", "no"]


def tiny_bert_dir(root: Path, kind: str = "bert", layers: int = 4, hidden: int = 32) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer, MPNetConfig, MPNetModel

    folder = root / f"tiny-{kind}"
    if (folder / "config.json").is_file():
        return folder
    folder.mkdir(parents=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(dict.fromkeys(SPECIAL + WORDS)) + "\n")
    torch.manual_seed(0)
    size = dict(vocab_size=len(SPECIAL) + len(WORDS) + 8, hidden_size=hidden, num_hidden_layers=layers,
                num_attention_heads=4, intermediate_size=2 * hidden, max_position_embeddings=520)
    if kind == "bert":
        model = BertModel(BertConfig(**size), add_pooling_layer=False)
    else:
        model = MPNetModel(MPNetConfig(**size, pad_token_id=0), add_pooling_layer=False)
    model.save_pretrained(str(folder))
    words = {w: i for i, w in enumerate(dict.fromkeys(SPECIAL + WORDS))}
    BertTokenizer(vocab=words, do_lower_case=False).save_pretrained(str(folder))  # lower-casing is ours to do
    return folder


def install_tiny(tmp_path_factory, monkeypatch) -> dict:
    """``minilm`` and ``mpnet`` resolve to tiny random models; the token cache goes to a fresh folder."""
    from miar.data import tokens

    root = tmp_path_factory.getbasetemp() / "tiny-backbones"
    bert, mpnet = tiny_bert_dir(root, "bert"), tiny_bert_dir(root, "mpnet")
    monkeypatch.setitem(tokens.BACKBONE_DIRS, "minilm", lambda cache: bert)
    monkeypatch.setitem(tokens.BACKBONE_DIRS, "mpnet", lambda cache: mpnet)
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MIAR_CACHE", str(cache))
    return {"minilm": bert, "mpnet": mpnet, "cache": cache}
