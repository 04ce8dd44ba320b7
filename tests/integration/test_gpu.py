"""The GPU path (issue 14): a CUDA smoke fit, bf16 autocast against fp32, a fine-tuning step, a MOSEI-size epoch.

Marked ``gpu``: the default run deselects them, and ``pytest -m gpu`` on a machine without CUDA skips them
(module-level skip). ``scripts/gpu_check.sh`` runs them and the benchmark on a GPU machine. Timings are the
benchmark's (``results/bench/gpu.json``), not these tests'.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from backbones import install_tiny  # noqa: I001 (tests/backbones.py)

from miar import config as C
from miar.data import build_splits, make_synthetic
from miar.data.tokens import BackboneUnavailable, backbone_dir
from miar.model.text_backbone import cache_lower
from miar.train import Trainer, fit, pick_device

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

BF16_PRED_TOL = 0.05  # |pred_bf16 - pred_fp32| on scores in [-3, 3]: bf16 keeps 8 mantissa bits (~0.4% per op)
BF16_CORR_MIN = 0.999  # and the two forwards' predictions correlate at least this well


def small(*extra: str) -> C.Config:
    return C.load("smoke", overrides=["train.progress=false", "train.device=cuda", "train.amp=bf16",
                                      "data.synthetic.n_train=256", "data.synthetic.n_valid=64",
                                      "data.synthetic.n_test=64", "train.epochs=2", *extra])


def test_cuda_smoke_fit(tmp_path):
    metrics = fit(small(), tmp_path / "run")
    assert np.isfinite(metrics["test"]["mae"])
    assert torch.backends.cuda.matmul.allow_tf32  # set by pick_device for CUDA
    import json
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["device"].startswith("cuda")


@pytest.mark.parametrize("model", ["miar", "mult", "misa"])
def test_bf16_forward_agrees_with_fp32(model):
    torch.backends.cuda.matmul.allow_tf32 = False  # the reference is plain fp32
    cfg = small(f"model.name={model}")
    splits = build_splits(cfg)
    trainer = Trainer(cfg, splits["train"].dims, len(splits["train"]), torch.device("cuda"))
    trainer.model.eval()
    batch = splits["test"].batch(torch.arange(64)).to("cuda")
    with torch.no_grad():
        ref = trainer.model(batch).pred.float()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = trainer.model(batch).pred.float()
    assert (low - ref).abs().max().item() <= BF16_PRED_TOL
    assert torch.corrcoef(torch.stack([low, ref]))[0, 1].item() >= BF16_CORR_MIN


def test_fused_adamw_on_cuda():
    cfg = small()
    trainer = Trainer(cfg, {"text": 768, "audio": 5, "vision": 20}, 256, pick_device("cuda"))
    assert trainer.opt.defaults.get("fused") is True
    assert all(p.is_cuda for g in trainer.opt.param_groups for p in g["params"])


def test_a_finetune_step_on_cuda(tmp_path_factory, monkeypatch):
    try:  # the real MiniLM when installed (or MIAR_MINILM_DIR), else the tiny random BERT
        backbone_dir("minilm", tmp_path_factory.mktemp("c"))
    except BackboneUnavailable:
        install_tiny(tmp_path_factory, monkeypatch)
    cfg = small("model.name=text_only", "model.text_backbone=minilm", "model.finetune=top:2",
                "data.modalities=[text]")
    splits = build_splits(cfg)
    trainer = Trainer(cfg, splits["train"].dims, len(splits["train"]), torch.device("cuda"))
    splits = cache_lower(trainer.model, splits, trainer.device)
    assert splits["train"].x["text"].device.type == "cpu"  # cached on the host, sent per batch
    top = trainer.model.backbone.upper_layers()[-1]
    before = [p.detach().clone() for p in top.parameters()]
    loss, _ = trainer.step(splits["train"].batch(torch.arange(32)))
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, top.parameters()))


def test_mosei_size_epoch_in_bf16():
    splits = make_synthetic("mosei", n_valid=8, n_test=8)  # 16326 training samples, aligned, MOSEI dims
    cfg = C.merge(C.Config(), {"data": {"batch_size": 64}, "train": {"device": "cuda", "amp": "bf16",
                                                                     "progress": False}})
    trainer = Trainer(cfg, splits["train"].dims, len(splits["train"]), torch.device("cuda"))
    torch.cuda.reset_peak_memory_stats()
    losses = trainer.epoch(splits["train"])
    torch.cuda.synchronize()
    assert np.isfinite(losses["train_loss"])
    assert torch.cuda.max_memory_allocated() < 8 * 2**30  # batches go to the GPU; the dataset stays on the host
