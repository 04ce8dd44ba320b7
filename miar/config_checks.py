"""Values a run cannot be made of, refused up front (before any data is read or any file written).

:func:`validate` checks what the types of :mod:`miar.config` cannot: ranges (epochs and patience >= 1,
batch size >= 1, rates and weights >= 0 and finite, dropout in [0, 1), context >= 0, validation videos
inside the bc split's 62 training videos, or for bc_test_cv inside each fold's training videos, and a fold
number inside the fold count), ``d_model`` divisible by ``n_heads``, a config ``name`` that is one
plain directory name (it becomes ``runs/<name>-s<seed>`` and ``DIR/runs/<name>/``), no ``data.path`` for
generated (synthetic) data, where it would be silently ignored, and sizes a run could
not hold in memory (a bound per width and on the estimated parameter and data element counts). Each failure
is a one-line :class:`~miar.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING

from miar.errors import ConfigError
from miar.paths import component

if TYPE_CHECKING:  # annotations only: miar.config calls validate, so this module must not import it
    from miar import config as C

BC_TRAIN_VIDEOS = 62  # the released bc-LSTM split's training videos (miar.data.mosi)
BC_TEST_VIDEOS = 31  # and its test videos: split bc_test_cv cross-validates inside them (miar.data.cv)
MOSI_VIDEOS = 93  # every MOSI video: split all_cv cross-validates over them (miar.data.cv)
CV_VIDEOS = {"bc_test_cv": BC_TEST_VIDEOS, "all_cv": MOSI_VIDEOS}
MAX_WIDTH = 8192  # d_model, proj_dim: wider than any model in the study by > 30x
MAX_HIDDEN = 65536  # head_hidden, synthetic feature dims
MAX_LAYERS = 64
MAX_LEN = 65536  # max_len, synthetic seq_len
MAX_BATCH = 65536
MAX_CONTEXT = 64  # MOSI's longest video has 63 utterances: a wider window adds only padding (2199 x 129 steps)
MAX_SAMPLES = 10**7  # per synthetic split
MAX_EPOCHS = 100_000
MAX_PARAMS = 10**9  # ~4 GB of float32 weights, ~16 GB with AdamW's state and gradients
MAX_DATA_ELEMENTS = 2**32  # synthetic features, float32: 16 GiB
SYNTH_PRESETS = {"mosi": ((1284, 229, 686), (768, 5, 20), (50, 375, 500)),  # sizes, dims, unaligned lengths
                 "mosei": ((16326, 1871, 4659), (768, 74, 35), (50, 500, 500))}


def _range(key: str, value, lo=None, hi=None, lo_open: bool = False, hi_open: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: {value!r} is not a finite number")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ConfigError(f"{key}: {value!r} must be {'>' if lo_open else '>='} {lo}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ConfigError(f"{key}: {value!r} must be {'<' if hi_open else '<='} {hi}")


def _finite(obj, prefix: str = "") -> None:
    """Every float in the config is finite (YAML's ``.nan`` and ``.inf`` are floats)."""
    for f in fields(obj):
        v, key = getattr(obj, f.name), f"{prefix}{f.name}"
        if is_dataclass(v):
            _finite(v, f"{key}.")
        for x in (v if isinstance(v, tuple) else (v,)):
            if isinstance(x, float) and not math.isfinite(x):
                raise ConfigError(f"{key}: {v!r} is not a finite number")


def _data(d: C.DataConfig) -> None:
    _range("data.batch_size", d.batch_size, 1, MAX_BATCH)
    _range("data.context", d.context, 0, MAX_CONTEXT)
    _range("data.valid_seed", d.valid_seed, 0)
    if not d.modalities or len(set(d.modalities)) != len(d.modalities) \
            or not set(d.modalities) <= {"text", "audio", "vision"}:
        raise ConfigError(f"data.modalities: {list(d.modalities)} must be distinct names among text, audio, vision")
    if d.source == "mosi" and d.split == "bc":
        _range("data.n_valid_videos", d.n_valid_videos, 1, BC_TRAIN_VIDEOS - 1)
    elif d.split not in CV_VIDEOS:
        _range("data.n_valid_videos", d.n_valid_videos, 1)
    _cv(d)
    s = d.synthetic
    for k in ("n_train", "n_valid", "n_test"):
        _range(f"data.synthetic.{k}", getattr(s, k), 2, MAX_SAMPLES)
    _range("data.synthetic.seq_len", s.seq_len, 1, MAX_LEN)
    _range("data.synthetic.noise", s.noise, 0)
    _range("data.synthetic.seed", s.seed, 0)
    _range("data.synthetic.warp", s.warp, 0.0, 10.0)
    _range("data.synthetic.interaction", s.interaction, 0.0, 1.0)
    for i, v in enumerate(s.dims or ()):
        _range(f"data.synthetic.dims[{i}]", v, 1, MAX_HIDDEN)
    if d.source == "synthetic":
        _synthetic_size(s)
        if d.path is not None:  # silently ignored otherwise: the run would not be on the data it names
            raise ConfigError(f"data.path: {d.path!r} is not read with data.source=synthetic (the data is "
                              f"generated; set data.source to mosi, mmsa or mult to read a file)")


def _cv(d: C.DataConfig) -> None:
    """bc_test_cv, all_cv: folds, fold, repeat and validation videos that fit the videos they deal (31 bc test
    videos, all 93); elsewhere the cv keys must stay at their defaults (a cv_fold that silently did nothing would
    run the wrong experiment)."""
    if d.split not in CV_VIDEOS:
        for k, v in (("cv_folds", 5), ("cv_fold", 0), ("cv_repeat", 0)):
            if getattr(d, k) != v:
                raise ConfigError(f"data.{k}: {getattr(d, k)!r} is only used with data.split=bc_test_cv or all_cv "
                                  f"(split is {d.split!r})")
        return
    if d.source != "mosi":
        raise ConfigError(f"data.split: {d.split} needs data.source=mosi (source is {d.source!r})")
    videos = CV_VIDEOS[d.split]
    _range("data.cv_folds", d.cv_folds, 2, videos // 2)
    _range("data.cv_fold", d.cv_fold, 0, d.cv_folds - 1)
    _range("data.cv_repeat", d.cv_repeat, 0, 2**31 - 1)
    largest = -(-videos // d.cv_folds)  # videos of the largest fold: its runs train on the fewest
    _range("data.n_valid_videos", d.n_valid_videos, 1, videos - largest - 1)


def _synthetic_size(s: C.SyntheticConfig) -> None:
    sizes, dims, lengths = SYNTH_PRESETS[s.preset]
    n = sum(v if v is not None else p for v, p in zip((s.n_train, s.n_valid, s.n_test), sizes))
    steps = (s.seq_len,) * 3 if s.aligned else lengths
    elements = n * sum(t * w for t, w in zip(steps, s.dims or dims))
    if elements > MAX_DATA_ELEMENTS:
        raise ConfigError(f"data.synthetic: {n} samples x {steps} steps x {list(s.dims or dims)} dims are "
                            f"{elements:.3g} values, more than the bound {MAX_DATA_ELEMENTS:.3g} (16 GiB)")


def _model(m: C.ModelConfig) -> None:
    _range("model.d_model", m.d_model, 1, MAX_WIDTH)
    _range("model.n_heads", m.n_heads, 1, m.d_model)
    if m.d_model % m.n_heads:
        raise ConfigError(f"model.d_model: {m.d_model} is not divisible by model.n_heads={m.n_heads}")
    _range("model.n_layers", m.n_layers, 1, MAX_LAYERS)
    _range("model.dropout", m.dropout, 0, 1, hi_open=True)
    _range("model.head_hidden", m.head_hidden, 1, MAX_HIDDEN)
    _range("model.proj_dim", m.proj_dim, 1, MAX_WIDTH)
    _range("model.max_len", m.max_len, 1, MAX_LEN)
    for k in ("misa_sim_weight", "misa_diff_weight", "misa_recon_weight"):
        _range(f"model.{k}", getattr(m, k), 0)
    # a generous estimate: 3 modalities x 6 attention blocks (MulT's crossmodal ones) x 12 d^2 per layer
    params = 3 * 6 * 12 * m.n_layers * m.d_model**2 + 4 * m.d_model * m.head_hidden + m.max_len * m.d_model
    if params > MAX_PARAMS:
        raise ConfigError(f"model: d_model={m.d_model}, n_layers={m.n_layers}, head_hidden={m.head_hidden} "
                            f"give ~{params:.3g} parameters, more than the bound {MAX_PARAMS:.0e}")


def _loss_train(cfg: C.Config) -> None:
    from miar.metrics import METRICS  # lazy: metrics imports numpy/scipy

    lo, t = cfg.loss, cfg.train
    _range("loss.weight", lo.weight, 0)
    _range("loss.temperature", lo.temperature, 0, lo_open=True)
    _range("train.epochs", t.epochs, 1, MAX_EPOCHS)
    _range("train.patience", t.patience, 1)
    _range("train.lr", t.lr, 0, lo_open=True)
    _range("train.weight_decay", t.weight_decay, 0)
    _range("train.warmup_epochs", t.warmup_epochs, 0, t.epochs)
    _range("train.grad_clip", t.grad_clip, 0)
    _range("train.threads", t.threads, 0, 4096)
    if t.criterion not in METRICS:
        raise ConfigError(f"train.criterion: {t.criterion!r} is not one of {list(METRICS)}")


def validate(cfg: C.Config) -> C.Config:
    """``cfg`` if every value is usable for a run, else :class:`~miar.config.ConfigError` naming the key."""
    component(cfg.name, "name")
    _range("seed", cfg.seed, 0, 2**63 - 1)
    _finite(cfg)
    _data(cfg.data)
    _model(cfg.model)
    _loss_train(cfg)
    return cfg


__all__ = ["validate", "BC_TRAIN_VIDEOS", "MAX_PARAMS", "MAX_DATA_ELEMENTS"]
