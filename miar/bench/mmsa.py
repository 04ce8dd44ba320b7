"""MMSA's MulT (``MMSA==2.2.1``, the ``bench`` extra) built with the hyperparameters of our MulT.

MMSA's ``MULT(args)`` (``MMSA/models/singleTask/MULT.py``) reads these fields of ``args``; the
benchmark sets them from our ``mult_from_hparams(dims, d, n_heads, n_layers, dropout)``:

===========================================  ==============================================
MMSA field                                   value (our hyperparameter)
===========================================  ==============================================
``feature_dims``                             input dims (text, audio, vision) = ``dims``
``dst_feature_dim_nheads``                   ``(d, n_heads)``
``nlevels``                                  ``n_layers`` (memory layers: ``max(n_layers, 3)`` in both)
``attn_dropout``, ``attn_dropout_a/_v``      ``dropout``
``relu_dropout``, ``res_dropout``            ``dropout``
``embed_dropout``, ``output_dropout``        ``dropout``
``text_dropout``                             ``dropout`` (ours has no extra text dropout: MMSA pays one more)
``conv1d_kernel_size_l/_a/_v``               1 (our default ``kernel=1``; MMSA pads 0, so 1 keeps lengths)
``attn_mask``                                False (MMSA's config says True: a "future" mask that ours lacks)
``use_bert``                                 False (both read the same 768-d text features)
``train_mode``, ``num_classes``              "regression", 1
===========================================  ==============================================

Known differences that remain (they change what is computed, slightly): MMSA's TransformerEncoder
is built without positional embeddings (``position_embedding=False`` by default), attends to padded
steps and reads the last *padded* step; ours adds sinusoidal positions, masks padding and reads the
last real step. Both get the same index batches, formed as our trainer forms them (shuffled,
length-bucketed); ours trims each batch to its longest real sequence, MMSA is fed the full padded
tensors (as its DataLoader would), but by tensor indexing, not its per-sample DataLoader. Ours
draws dropout masks from 16-bit slices of 64-bit random words (``miar.model.layers.dropout``);
MMSA uses ``F.dropout`` (one ``bernoulli_`` draw per element).
"""

from __future__ import annotations

import math
import statistics
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miar.bench.core import Settings, interleaved, make_pool, model_cfg, sampler
from miar.model.mult import mult_from_hparams

MODALITIES = ("text", "audio", "vision")


def available() -> tuple[bool, str]:
    """(True, MMSA version) when MMSA's MulT can be imported, else (False, the reason)."""
    try:
        from importlib.metadata import version  # noqa: PLC0415

        from MMSA.models.singleTask.MULT import MULT  # noqa: F401, PLC0415
        return True, version("MMSA")
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        return False, (f"MMSA's MulT cannot be imported ({type(e).__name__}: {e}); install the bench extra: "
                       "pip install -e .[bench] (or make bench)")


def mmsa_args(dims: dict[str, int], d: int, n_heads: int, n_layers: int, dropout: float) -> SimpleNamespace:
    """The ``args`` object MMSA's ``MULT`` reads, from our MulT's hyperparameters (table above)."""
    p = float(dropout)
    return SimpleNamespace(
        use_bert=False, use_finetune=False, transformers="bert", pretrained="bert-base-uncased",
        feature_dims=tuple(int(dims[m]) for m in MODALITIES), dst_feature_dim_nheads=(d, n_heads),
        nlevels=n_layers, attn_dropout=p, attn_dropout_a=p, attn_dropout_v=p, relu_dropout=p,
        embed_dropout=p, res_dropout=p, output_dropout=p, text_dropout=p, attn_mask=False,
        conv1d_kernel_size_l=1, conv1d_kernel_size_a=1, conv1d_kernel_size_v=1,
        train_mode="regression", num_classes=1)


def mapping(args: SimpleNamespace) -> dict:
    """The args as a JSON-ready dict (recorded in the benchmark output)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(args).items()}


class MMSAMulT(nn.Module):
    """MMSA's ``MULT`` taking full padded tensors: ``forward(x)`` with x modality -> (B, T_m, d_m) -> (B,)."""

    def __init__(self, args: SimpleNamespace):
        super().__init__()
        from MMSA.models.singleTask.MULT import MULT  # noqa: PLC0415 (optional dependency)
        if args.dst_feature_dim_nheads[0] in args.feature_dims:
            raise ValueError("MMSA skips its projection when an input dim equals d: choose another d")
        self.net = MULT(args)

    def forward(self, x: dict[str, Tensor]) -> Tensor:
        return self.net(x["text"], x["audio"], x["vision"])["M"].squeeze(-1)  # (B,)


def build(dims: dict[str, int], d: int, n_heads: int, n_layers: int, dropout: float) -> tuple[nn.Module, dict]:
    """MMSA's MulT for these hyperparameters and the field mapping used."""
    args = mmsa_args(dims, d, n_heads, n_layers, dropout)
    return MMSAMulT(args), mapping(args)


def compare(s: Settings, log) -> dict:
    """Our MulT vs MMSA's, same hyperparameters, identical tensors, L1 + AdamW, interleaved steps."""
    ok, info = available()
    if not ok:
        return {"available": False, "reason": info}
    cfg = model_cfg("mult", 32, s)
    hp = dict(d=cfg.model.d_model, n_heads=cfg.model.n_heads, n_layers=cfg.model.n_layers,
              dropout=cfg.model.dropout)
    rows, mapping = [], {}
    for preset, aligned in s.shapes:
        ds = make_pool(preset, aligned, s.pool, s)
        for b in s.batches:
            torch.manual_seed(0)
            ours = mult_from_hparams(ds.dims, **hp).to(s.device).train()
            theirs, mapping = build(ds.dims, **hp)
            theirs = theirs.to(s.device).train()
            steps = {"ours": _l1_step(ours, ds, s, mmsa=False, cfg=cfg),
                     "mmsa": _l1_step(theirs, ds, s, mmsa=True, cfg=cfg)}
            t = interleaved(steps, sampler(ds, b), s)
            o, m = statistics.median(t["ours"]), statistics.median(t["mmsa"])
            rows.append({"preset": preset, "aligned": aligned, "batch": b, "ours_samples_per_s": b / o,
                         "mmsa_samples_per_s": b / m, "speedup": m / o,
                         "ours_params": sum(p.numel() for p in ours.parameters()),
                         "mmsa_params": sum(p.numel() for p in theirs.parameters())})
            log(f"  {preset:5s} {'aligned' if aligned else 'unalign':7s} B={b:<3d} ours {b / o:8.1f} "
                f"MMSA {b / m:8.1f} samples/s  speedup {m / o:.2f}x")
    geo = math.exp(statistics.fmean(math.log(r["speedup"]) for r in rows))
    return {"available": True, "mmsa_version": info, "hparams": hp, "mmsa_args": mapping, "shapes": rows,
            "speedup_geomean": geo, "note": known_differences()}


def known_differences() -> str:
    """The docstring's last paragraph, whole and on one line: "Known differences that remain ..."."""
    return " ".join(("Known differences" + __doc__.split("Known differences", 1)[1]).split())


def _l1_step(model, ds, s: Settings, mmsa: bool, cfg):
    """Forward, L1 to the label, backward, fused AdamW (``train``'s lr and weight decay), no clipping."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay,
                            fused=True)  # the trainer's optimizer, for both models

    def step(idx):
        with torch.autocast(s.device, dtype=torch.bfloat16, enabled=s.device == "cuda"):
            if mmsa:  # the full padded tensors, as MMSA's loader gives them
                pred = model({m: ds.x[m][idx].to(s.device) for m in ds.modalities})
            else:
                pred = model(ds.batch(idx).to(s.device)).pred
        loss = F.l1_loss(pred.float(), ds.y[idx].to(s.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def table_lines(mm: dict) -> list[str]:
    """The comparison as plain-text lines for ``miar bench``'s table."""
    if not mm.get("available"):
        return [f"\nMMSA comparison not run: {mm['reason']}"]
    out = [f"\nMulT, ours vs MMSA {mm['mmsa_version']} ({mm['hparams']}):",
           f"{'shape':15s} {'B':>3s} {'ours/s':>9s} {'MMSA/s':>9s} {'speedup':>8s}"]
    for r in mm["shapes"]:
        shape = f"{r['preset']} {'aligned' if r['aligned'] else 'unaligned'}"
        out.append(f"{shape:15s} {r['batch']:3d} {r['ours_samples_per_s']:9.1f} "
                   f"{r['mmsa_samples_per_s']:9.1f} {r['speedup']:7.2f}x")
    return out

