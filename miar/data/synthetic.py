"""Synthetic multimodal sentiment data with a known generative truth, and pickle writers.

Generative story (experiments test claims against it, so it is part of the contract):

1. Label. ``s = 3 * tanh(0.8 * g)``, ``g ~ N(0, 1)``; a fraction ``ZERO_FRACTION`` (4 %, as in
   MOSI) is set to exactly 0. ``y = s`` (float32, inside [-3, 3]). ``u = s / 3``.
2. Per-sample latents, shared by all modalities: ``N_NUISANCE`` nuisance factors ``r ~ N(0, 0.5^2)``
   (speaker, recording: unrelated to ``s``), a length fraction ``rho ~ U(0.2, 1)`` and random
   phases for ``N_TIME`` sinusoids.
3. Modality ``m`` (order ``MODALITIES``: text, audio, vision) has a fixed random map drawn from
   ``(seed, m)`` only, so every split shares it: a 2-layer MLP ``f_m(v) = tanh(v W1 + b1) W2``
   (``HIDDEN`` units, output ``d_m``). At step ``t`` of sample ``i`` its input is
   ``v = [strength_m * u_i + LATENT_NOISE * n_im, r_i, sin(2 pi k_mj t / T_m + phase_ij)_j]``
   with ``n_im ~ N(0, 1)`` per sample and modality: the sentiment is in every step, the
   sinusoids make sequences vary in time, and ``n_im`` (which pooling cannot average away)
   caps what modality ``m`` alone can tell: its signal-to-noise ratio is
   ``strength_m^2 * Var(u) / LATENT_NOISE^2`` (Var(u) ~ 0.3), before the per-step ``noise``.
4. Observation: ``x = (1 + |shift_m|) * (f_m(v) + noise * eps) + shift_m * sqrt(d_m) * e_m`` with
   ``eps ~ N(0, I)`` and a fixed random unit direction ``e_m``: a scale change and an offset of
   RMS ``|shift_m|`` per feature, the same in all splits (the "modality gap").
5. Lengths. Aligned: all modalities share ``T = seq_len`` and a real length
   ``ceil(rho * T)``. Unaligned: padded lengths ``unaligned_lens`` and real lengths
   ``ceil(rho * T_m * U(0.85, 1.15))`` clipped to ``[1, T_m]``. Padding steps are exactly 0.

Truths this encodes: modality ``m`` carries information about ``y`` in proportion to
``strength_m`` (0 = none); with ``noise`` the per-step noise that pooling averages out; nuisance
is a per-sample confounder pooling cannot remove; the modalities' ``n_im`` are independent,
so fusing them beats the best single modality. Ids look like ``"syn_train_v0003$_$2"``
(8 clips per video, videos never shared across splits).

Memory and time: each split holds ``N * T_m * d_m`` float32 values per modality. The MOSEI preset
aligned needs ~3.5 GB for text (22856 x 50 x 768 x 4 bytes; train alone 2.5 GB) and takes ~30 s
on 2 CPU cores; MOSI takes ~2 s. Only real steps are computed, in chunks of ``CHUNK`` samples,
so temporaries stay small. Use small ``n_*`` in tests.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from miar.data.batch import MODALITIES, DataError, ModalDataset

SPLITS = ("train", "valid", "test")
PRESETS: dict[str, dict[str, tuple[int, int, int]]] = {
    "mosi": {"sizes": (1284, 229, 686), "dims": (768, 5, 20), "unaligned": (50, 375, 500)},
    "mosei": {"sizes": (16326, 1871, 4659), "dims": (768, 74, 35), "unaligned": (50, 500, 500)},
}
ZERO_FRACTION = 0.04  # share of labels exactly 0
LATENT_NOISE = 0.3  # per-sample, per-modality noise on the sentiment input
N_NUISANCE = 4  # per-sample confounders shared by the modalities
NUISANCE_STD = 0.5
N_TIME = 3  # sinusoidal time inputs per step
HIDDEN = 32  # width of each modality's random MLP
CHUNK = 1024  # samples generated at once
CLIPS_PER_VIDEO = 8


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class _Map:
    """Fixed random map of one modality (shared by all splits)."""

    w1: np.ndarray  # (1 + N_NUISANCE + N_TIME, HIDDEN)
    b1: np.ndarray  # (HIDDEN,)
    w2: np.ndarray  # (HIDDEN, d)
    freqs: np.ndarray  # (N_TIME,) cycles over the padded length
    direction: np.ndarray  # (d,) unit vector of the shift offset


def _make_map(seed: int, mi: int, d: int) -> _Map:
    rng = _rng(seed, 1, mi)
    k_in = 1 + N_NUISANCE + N_TIME
    w1 = rng.standard_normal((k_in, HIDDEN)) / math.sqrt(k_in / 2)
    w2 = rng.standard_normal((HIDDEN, d)) / math.sqrt(HIDDEN * 0.35)  # ~unit output variance
    e = rng.standard_normal(d)
    return _Map(w1=w1.astype(np.float32), b1=(0.3 * rng.standard_normal(HIDDEN)).astype(np.float32),
                w2=w2.astype(np.float32), freqs=rng.uniform(1.0, 4.0, N_TIME).astype(np.float32),
                direction=(e / np.linalg.norm(e)).astype(np.float32))


def _labels(rng: np.random.Generator, n: int) -> np.ndarray:
    s = 3.0 * np.tanh(0.8 * rng.standard_normal(n))  # (N,)
    s[rng.random(n) < ZERO_FRACTION] = 0.0
    return np.clip(s, -3.0, 3.0).astype(np.float32)


def _lengths(rho: np.ndarray, t: int, jitter: np.ndarray | None) -> np.ndarray:
    """Real lengths ``ceil(rho * t * jitter)`` in [1, t]; (N,) int."""
    raw = rho * t * (1.0 if jitter is None else jitter)
    return np.clip(np.ceil(raw), 1, t).astype(np.int64)


def _modality(mp: _Map, sig: np.ndarray, nuis: np.ndarray, phase: np.ndarray, lengths: np.ndarray,
              t: int, noise: float, shift: float, rng: np.random.Generator) -> np.ndarray:
    """Features ``(N, t, d)`` of one modality for one split; only real steps are computed."""
    n, d = len(sig), mp.w2.shape[1]
    out = np.zeros((n, t, d), dtype=np.float32)  # padding stays exactly 0
    scale, offset = np.float32(1 + abs(shift)), np.float32(shift * math.sqrt(d)) * mp.direction
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        mask = np.arange(t)[None, :] < lengths[a:b, None]  # (k, t)
        i, step = np.nonzero(mask)  # (R,) sample (within chunk) and step of each real step
        i = i + a
        ang = 2 * np.pi * mp.freqs[None, :] * step[:, None].astype(np.float32) / t + phase[i]
        v = np.concatenate([sig[i, None], nuis[i], np.sin(ang)], axis=1)  # (R, k_in)
        h = np.tanh(v.astype(np.float32) @ mp.w1 + mp.b1)  # (R, HIDDEN)
        x = h @ mp.w2  # (R, d)
        if noise:
            x += np.float32(noise) * rng.standard_normal(x.shape, dtype=np.float32)
        x *= scale
        x += offset
        out[a:b][mask] = x
    return out


def _split(name: str, si: int, n: int, maps: list[_Map], lens: tuple[int, int, int], aligned: bool,
           seed: int, noise: float, strength: tuple, shift: tuple) -> ModalDataset:
    rng = _rng(seed, 2, si)
    y = _labels(rng, n)  # (N,)
    nuis = (NUISANCE_STD * rng.standard_normal((n, N_NUISANCE))).astype(np.float32)  # (N, K)
    rho = rng.uniform(0.2, 1.0, n)  # (N,)
    x, mask = {}, {}
    for mi, m in enumerate(MODALITIES):
        mrng = _rng(seed, 3, si, mi)
        phase = mrng.uniform(0, 2 * np.pi, (n, N_TIME)).astype(np.float32)
        jitter = None if aligned else mrng.uniform(0.85, 1.15, n)
        ln = _lengths(rho, lens[mi], jitter)
        sig = (strength[mi] * y / 3.0 + LATENT_NOISE * mrng.standard_normal(n)).astype(np.float32)
        feats = _modality(maps[mi], sig, nuis, phase, ln, lens[mi], noise, shift[mi], mrng)
        x[m] = torch.from_numpy(feats)
        mask[m] = torch.arange(lens[mi])[None, :] < torch.from_numpy(ln)[:, None]  # (N, T_m)
    ids = [f"syn_{name}_v{i // CLIPS_PER_VIDEO:04d}$_${i % CLIPS_PER_VIDEO + 1}" for i in range(n)]
    return ModalDataset(x=x, mask=mask, y=torch.from_numpy(y), ids=ids, meta={"split": name})


def _triple(v, name: str) -> tuple:
    t = tuple(float(a) for a in v)
    if len(t) != 3:
        raise DataError(f"{name} must have 3 entries (text, audio, vision), got {len(t)}")
    return t


def make_synthetic(preset: str = "mosi", *, seed: int = 0, n_train: int | None = None,
                   n_valid: int | None = None, n_test: int | None = None, aligned: bool = True,
                   seq_len: int = 50, unaligned_lens: tuple[int, int, int] | None = None,
                   noise: float = 0.5, strength: tuple[float, float, float] = (1.0, 0.6, 0.3),
                   shift: tuple[float, float, float] = (0.0, 0.0, 0.0),
                   dims: tuple[int, int, int] | None = None) -> dict[str, ModalDataset]:
    """Train/valid/test datasets from the generative story in the module docstring.

    ``preset`` ("mosi" or "mosei") gives default sizes, dims and unaligned lengths; ``strength``,
    ``shift`` and ``dims`` are ordered (text, audio, vision). Deterministic given all arguments.
    """
    if preset not in PRESETS:
        raise DataError(f"unknown synthetic preset {preset!r} (choose from {sorted(PRESETS)})")
    p = PRESETS[preset]
    sizes = [p["sizes"][i] if v is None else int(v) for i, v in enumerate((n_train, n_valid, n_test))]
    dims_t = tuple(int(d) for d in (dims if dims is not None else p["dims"]))
    lens = (seq_len,) * 3 if aligned else tuple(unaligned_lens or p["unaligned"])
    strength, shift = _triple(strength, "strength"), _triple(shift, "shift")
    if len(dims_t) != 3 or len(lens) != 3 or min(dims_t + lens) < 1 or min(sizes) < 0:
        raise DataError(f"bad synthetic sizes: dims {dims_t}, lengths {lens}, splits {sizes}")
    maps = [_make_map(seed, mi, dims_t[mi]) for mi in range(3)]
    meta = {"source": "synthetic", "preset": preset, "strength": strength, "shift": shift,
            "noise": float(noise), "seed": seed, "aligned": aligned}
    out = {}
    for si, name in enumerate(SPLITS):
        ds = _split(name, si, sizes[si], maps, lens, aligned, seed, noise, strength, shift)
        ds.meta.update(meta)
        out[name] = ds
    return out


# --- writers (plain pickles in the MMSA / MulT layouts the loaders read) ---------------------


def _last_real(mask: np.ndarray) -> np.ndarray:
    """(N,) index of the last real step + 1 (a prefix mask's length)."""
    t = mask.shape[1]
    return np.where(mask.any(1), t - np.argmax(mask[:, ::-1], axis=1), 0).astype(np.int64)


def _need_all(ds: ModalDataset, name: str) -> None:
    if ds.modalities != MODALITIES:
        raise DataError(f"split '{name}' has modalities {list(ds.modalities)}, "
                        f"writers need {list(MODALITIES)}")


def _annotation(v: float) -> str:
    return "Positive" if v > 0 else "Negative" if v < 0 else "Neutral"


def _mmsa_split(ds: ModalDataset, name: str) -> dict:
    _need_all(ds, name)
    tmask = ds.mask["text"].numpy()  # (N, T)
    n, t = tmask.shape
    text_bert = np.zeros((n, 3, t), dtype=np.float32)  # ids / attention mask / segments
    text_bert[:, 0] = np.where(tmask, 1000 + np.arange(t)[None, :], 0)
    text_bert[:, 1] = tmask
    y = ds.y.numpy().astype(np.float32)
    return {"raw_text": list(ds.meta.get("raw_text", [""] * n)),
            "text": ds.x["text"].numpy(), "text_bert": text_bert,
            "audio": ds.x["audio"].numpy(), "vision": ds.x["vision"].numpy(),
            "audio_lengths": _last_real(ds.mask["audio"].numpy()).tolist(),
            "vision_lengths": _last_real(ds.mask["vision"].numpy()).tolist(),
            "id": np.array(ds.ids, dtype=object),
            "annotations": [_annotation(v) for v in y.tolist()],
            "regression_labels": y}


def _mult_split(ds: ModalDataset, name: str) -> dict:
    _need_all(ds, name)
    x = {m: (ds.x[m] * ds.mask[m][..., None]).numpy().astype(np.float32) for m in MODALITIES}
    return {**x, "labels": ds.y.numpy().astype(np.float32).reshape(-1, 1, 1),  # (N, 1, 1)
            "id": np.array([i.encode("utf-8") for i in ds.ids], dtype=bytes)}


def write_mmsa_pickle(splits: dict[str, ModalDataset], path: str | Path) -> None:
    """Write ``splits`` as an MMSA ``aligned_50.pkl``-style pickle (masks kept via lengths)."""
    with open(path, "wb") as fh:
        pickle.dump({k: _mmsa_split(v, k) for k, v in splits.items()}, fh, protocol=4)


def write_mult_pickle(splits: dict[str, ModalDataset], path: str | Path) -> None:
    """Write ``splits`` as a MulT ``mosi_data.pkl``-style pickle (padding written as zeros)."""
    with open(path, "wb") as fh:
        pickle.dump({k: _mult_split(v, k) for k, v in splits.items()}, fh, protocol=4)
