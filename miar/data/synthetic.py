"""Synthetic multimodal sentiment data with a known generative truth (writers: :mod:`miar.data.synthetic_pickles`).

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
3b. Modality gap (``warp``; default None = step 3 as written). With ``warp = w`` (a number >= 0) every
   modality observes the latent through ONE shared map ``f`` (drawn from ``seed`` alone; modality ``m`` uses
   its first ``d_m`` outputs), after a modality-specific rotation and warp of the latent part
   ``z = [sig_m, r]``: ``z' = W_m(Q_m z)`` with ``Q_m = expm(w * (G_m - G_m^T) / 2)``, ``G_m ~ N(0, 1)``
   (an orthogonal matrix that mixes the sentiment input into the nuisance directions), and per coordinate
   ``W_m(z) = c sinh(delta * asinh(z / c) + eps)``, ``c = WARP_SCALE``, ``delta = exp(w a)``, ``eps = w b``,
   ``a, b ~ U(-0.5, 0.5)`` (tail weight and skew). ``w = 0``: no gap, the modalities differ only by strength,
   noise and dims; ``w > 0``: a gap no per-feature affine map (z-scoring) removes, while each modality keeps
   all of its information (rotation and warp are invertible).
4. Observation: ``x = (1 + |shift_m|) * (f_m(v) + noise * eps) + shift_m * sqrt(d_m) * e_m`` with
   ``eps ~ N(0, I)`` and a fixed random unit direction ``e_m``: a scale change and an offset of
   RMS ``|shift_m|`` per feature, the same in all splits (an affine "modality gap", which z-scoring with
   training statistics removes before a model sees it; step 3b's survives).
5. Lengths. Aligned: all modalities share ``T = seq_len`` and a real length
   ``ceil(rho * T)``. Unaligned: padded lengths ``unaligned_lens`` and real lengths
   ``ceil(rho * T_m * U(0.85, 1.15))`` clipped to ``[1, T_m]``. Padding steps are exactly 0.
6. Interaction (``interaction = lam`` in [0, 1]; default 0 = steps 1 and 3 as written). Step 1 becomes
   ``s = 3 * tanh(0.8 * (sqrt(1 - lam) g + sqrt(lam) a b))`` with ``a, b ~ N(0, 1)`` (zeroed with the label);
   every modality's sentiment input carries only the additive part ``u = tanh(0.8 sqrt(1 - lam) g)``;
   text carries ``a`` and audio ``b`` through an extra input of their map (``a + LATENT_NOISE n``; vision 0).
   Since ``E[a b | a] = E[a b | b] = 0``, no single modality, and no sum ``h_T(text) + h_A(audio) + h_V(vision)``
   (late fusion), can predict the ``a b`` part; a model that combines text and audio non-additively can.
   ``meta["latents"]`` holds ``g, a, b`` per split (for oracles).

Truths this encodes: modality ``m`` carries information about ``y`` in proportion to
``strength_m`` (0 = none); with ``noise`` the per-step noise that pooling averages out; nuisance
is a per-sample confounder pooling cannot remove; the modalities' ``n_im`` are independent,
so fusing them beats the best single modality; with ``warp`` the modalities' features differ by more
than a per-feature affine map; with ``interaction`` a share of the label needs text and audio jointly.
Ids look like ``"syn_train_v0003$_$2"`` (8 clips per video, videos never shared across splits).

Memory and time: each split holds ``N * T_m * d_m`` float32 values per modality. The MOSEI preset
aligned needs ~3.5 GB for text (22856 x 50 x 768 x 4 bytes; train alone 2.5 GB) and takes ~30 s
on 2 CPU cores; MOSI takes ~2 s. Only real steps are computed, in chunks of ``CHUNK`` samples,
so temporaries stay small. Use small ``n_*`` in tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg
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
WARP_SCALE = 0.25  # the warp's sinh-arcsinh acts on latent values in units of this (the latents' scale ~0.5)


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
    w_extra: np.ndarray | None = None  # (HIDDEN,) weights of the interaction input (interaction > 0)
    rot: np.ndarray | None = None  # (1 + N_NUISANCE,) * 2 rotation of the latent input (warp set)
    delta: np.ndarray | None = None  # (1 + N_NUISANCE,) tail weight of the warp per latent coordinate
    eps: np.ndarray | None = None  # (1 + N_NUISANCE,) skew of the warp


def _make_map(seed: int, mi: int, d: int) -> _Map:
    rng = _rng(seed, 1, mi)
    k_in = 1 + N_NUISANCE + N_TIME
    w1 = rng.standard_normal((k_in, HIDDEN)) / math.sqrt(k_in / 2)
    w2 = rng.standard_normal((HIDDEN, d)) / math.sqrt(HIDDEN * 0.35)  # ~unit output variance
    e = rng.standard_normal(d)
    return _Map(w1=w1.astype(np.float32), b1=(0.3 * rng.standard_normal(HIDDEN)).astype(np.float32),
                w2=w2.astype(np.float32), freqs=rng.uniform(1.0, 4.0, N_TIME).astype(np.float32),
                direction=(e / np.linalg.norm(e)).astype(np.float32))


def _maps(seed: int, dims: tuple[int, int, int], warp: float | None, interaction: float) -> list[_Map]:
    """Each modality's map (story step 3): its own (``warp`` None) or one shared map cut to ``d_m`` outputs,
    with modality m's rotation and warp of strength ``warp``; with ``interaction`` an extra input row."""
    if warp is None:
        maps = [_make_map(seed, mi, dims[mi]) for mi in range(3)]
    else:
        shared = _make_map(seed, 3, max(dims))
        maps = []
        for mi, d in enumerate(dims):
            e = shared.direction[:d] / max(float(np.linalg.norm(shared.direction[:d])), 1e-12)
            rng, k = _rng(seed, 7, mi), 1 + N_NUISANCE
            g = rng.standard_normal((k, k))
            rot = scipy.linalg.expm(warp * (g - g.T) / 2)  # (k, k) orthogonal; identity at warp 0
            maps.append(replace(shared, w2=shared.w2[:, :d], direction=e.astype(np.float32),
                                rot=rot.astype(np.float32),
                                delta=np.exp(warp * rng.uniform(-0.5, 0.5, k)).astype(np.float32),
                                eps=(warp * rng.uniform(-0.5, 0.5, k)).astype(np.float32)))
    if interaction:
        maps = [replace(mp, w_extra=(_rng(seed, 5, mi).standard_normal(HIDDEN)).astype(np.float32))
                for mi, mp in enumerate(maps)]
    return maps


def _warp(mp: _Map, lat: np.ndarray) -> np.ndarray:
    """Story step 3b: rotate the latent input (R, k) and warp each coordinate (sinh-arcsinh, scale WARP_SCALE)."""
    z = lat @ mp.rot.T  # (R, k)
    return WARP_SCALE * np.sinh(mp.delta * np.arcsinh(z / WARP_SCALE) + mp.eps)


def _labels(rng: np.random.Generator, n: int) -> np.ndarray:
    s = 3.0 * np.tanh(0.8 * rng.standard_normal(n))  # (N,)
    s[rng.random(n) < ZERO_FRACTION] = 0.0
    return np.clip(s, -3.0, 3.0).astype(np.float32)


def _lengths(rho: np.ndarray, t: int, jitter: np.ndarray | None) -> np.ndarray:
    """Real lengths ``ceil(rho * t * jitter)`` in [1, t]; (N,) int."""
    raw = rho * t * (1.0 if jitter is None else jitter)
    return np.clip(np.ceil(raw), 1, t).astype(np.int64)


def _modality(mp: _Map, sig: np.ndarray, nuis: np.ndarray, phase: np.ndarray, lengths: np.ndarray,
              t: int, noise: float, shift: float, rng: np.random.Generator,
              extra: np.ndarray | None = None) -> np.ndarray:
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
        lat = np.concatenate([sig[i, None], nuis[i]], axis=1)  # (R, 1 + K)
        if mp.rot is not None:
            lat = _warp(mp, lat)
        v = np.concatenate([lat, np.sin(ang)], axis=1)  # (R, k_in)
        pre = v.astype(np.float32) @ mp.w1 + mp.b1  # (R, HIDDEN)
        if extra is not None:
            pre += extra[i, None] * mp.w_extra
        h = np.tanh(pre)  # (R, HIDDEN)
        x = h @ mp.w2  # (R, d)
        if noise:
            x += np.float32(noise) * rng.standard_normal(x.shape, dtype=np.float32)
        x *= scale
        x += offset
        out[a:b][mask] = x
    return out


def _signals(rng: np.random.Generator, si: int, n: int, seed: int, strength: tuple, interaction: float,
             ) -> tuple[np.ndarray, list, dict]:
    """Labels ``y`` (N,), per modality the sentiment input's clean part (``strength_m`` times it) and the
    interaction input (None where a modality carries none), and the latents (story steps 1 and 6)."""
    if not interaction:  # the original story, bit for bit
        y = _labels(rng, n)  # (N,)
        return y, [strength[mi] * y / 3.0 for mi in range(3)], [None, None, None], {}
    g = rng.standard_normal(n)  # (N,) the same draws as _labels
    zero = rng.random(n) < ZERO_FRACTION
    a, b = _rng(seed, 4, si).standard_normal((2, n))  # (N,) each: carried by text and by audio
    a[zero], b[zero], g[zero] = 0.0, 0.0, 0.0
    y = np.clip(3.0 * np.tanh(0.8 * (math.sqrt(1 - interaction) * g + math.sqrt(interaction) * a * b)),
                -3.0, 3.0).astype(np.float32)
    u_add = np.tanh(0.8 * math.sqrt(1 - interaction) * g)  # (N,) the additive part every modality carries
    return y, [strength[mi] * u_add for mi in range(3)], [a, b, None], {"g": g, "a": a, "b": b}


def _split(name: str, si: int, n: int, maps: list[_Map], lens: tuple[int, int, int], aligned: bool,
           seed: int, noise: float, strength: tuple, shift: tuple, interaction: float = 0.0) -> ModalDataset:
    rng = _rng(seed, 2, si)
    y, clean, carried, latents = _signals(rng, si, n, seed, strength, interaction)
    nuis = (NUISANCE_STD * rng.standard_normal((n, N_NUISANCE))).astype(np.float32)  # (N, K)
    rho = rng.uniform(0.2, 1.0, n)  # (N,)
    x, mask = {}, {}
    for mi, m in enumerate(MODALITIES):
        mrng = _rng(seed, 3, si, mi)
        phase = mrng.uniform(0, 2 * np.pi, (n, N_TIME)).astype(np.float32)
        jitter = None if aligned else mrng.uniform(0.85, 1.15, n)
        ln = _lengths(rho, lens[mi], jitter)
        sig = (clean[mi] + LATENT_NOISE * mrng.standard_normal(n)).astype(np.float32)
        extra = None
        if interaction:
            c = carried[mi] if carried[mi] is not None else np.zeros(n)
            extra = (c + LATENT_NOISE * _rng(seed, 6, si, mi).standard_normal(n)).astype(np.float32)
            extra *= carried[mi] is not None  # a modality without an interaction latent sees exactly 0
        feats = _modality(maps[mi], sig, nuis, phase, ln, lens[mi], noise, shift[mi], mrng, extra)
        x[m] = torch.from_numpy(feats)
        mask[m] = torch.arange(lens[mi])[None, :] < torch.from_numpy(ln)[:, None]  # (N, T_m)
    ids = [f"syn_{name}_v{i // CLIPS_PER_VIDEO:04d}$_${i % CLIPS_PER_VIDEO + 1}" for i in range(n)]
    meta = {"split": name, **({"latents": latents} if latents else {})}
    return ModalDataset(x=x, mask=mask, y=torch.from_numpy(y), ids=ids, meta=meta)


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
                   dims: tuple[int, int, int] | None = None, warp: float | None = None,
                   interaction: float = 0.0) -> dict[str, ModalDataset]:
    """Train/valid/test datasets from the generative story in the module docstring.

    ``preset`` ("mosi" or "mosei") gives default sizes, dims and unaligned lengths; ``strength``,
    ``shift`` and ``dims`` are ordered (text, audio, vision). ``warp`` (None, or >= 0) and ``interaction``
    (in [0, 1]) are story steps 3b and 6; their defaults give the original data bit for bit.
    Deterministic given all arguments.
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
    if not 0.0 <= float(interaction) <= 1.0 or (warp is not None and not 0.0 <= float(warp) <= 10.0):
        raise DataError(f"synthetic interaction must be in [0, 1] and warp None or in [0, 10], "
                        f"got {interaction!r} and {warp!r}")
    maps = _maps(seed, dims_t, None if warp is None else float(warp), float(interaction))
    meta = {"source": "synthetic", "preset": preset, "strength": strength, "shift": shift,
            "noise": float(noise), "seed": seed, "aligned": aligned}
    if warp is not None or interaction:
        meta.update(warp=warp, interaction=float(interaction))
    out = {}
    for si, name in enumerate(SPLITS):
        ds = _split(name, si, sizes[si], maps, lens, aligned, seed, noise, strength, shift, float(interaction))
        ds.meta.update(meta)
        out[name] = ds
    return out


# the pickle writers moved to miar.data.synthetic_pickles (this module stays one generator); old imports work
from miar.data.synthetic_pickles import write_mmsa_pickle, write_mult_pickle  # noqa: E402, F401
