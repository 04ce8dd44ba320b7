"""One strict configuration: nested frozen dataclasses hold every default.

An experiment is a YAML delta in ``miar/experiments/`` (optionally ``base: <other experiment>``);
``load(experiment, overrides=[...], seed=...)`` applies it and then dotted overrides
(``"model.d_model=32"``), strictly (:mod:`miar.strict`): unknown keys and wrong types raise
:class:`ConfigError` with a one-line message; :func:`miar.config_checks.validate` then refuses unusable values.
Choices MIAR's abstract leaves open are marked ``[inferred]``: the book lists them and ablations vary them.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import yaml

from miar.config_checks import validate
from miar.errors import ConfigError
from miar.strict import check_value, load_yaml, merge, parse_override, to_dict

EXPERIMENTS_DIR = Path(__file__).parent / "experiments"
DECLARATIONS = ("comparisons", "margins")  # study declarations beside the experiments (miar.comparisons reads them)
OPTIONAL = {"omit_default": True}  # a key added after records were written: left out of dump() at its default,
#                                    so every earlier experiment's resolved config.yaml stays byte-identical
LEGACY_TOKEN_SCHEMES = {"h1": "query", "h2": "directed", "h3": "joint"}  # model.token_scheme's first names
FINETUNE = ("frozen", "full") + tuple(f"top:{k}" for k in range(1, 13))  # model.finetune values


@dataclass(frozen=True)
class SyntheticConfig:
    preset: Literal["mosi", "mosei"] = "mosi"  # sizes and dims like MOSI (1284/229/686) or MOSEI
    n_train: int | None = None  # None = the preset's size
    n_valid: int | None = None
    n_test: int | None = None
    aligned: bool = True  # aligned: every modality seq_len steps; else MMSA's unaligned lengths
    seq_len: int = 50
    noise: float = 0.5  # observation noise
    strength: tuple[float, float, float] = (1.0, 0.6, 0.3)  # text, audio, vision: true contributions
    shift: tuple[float, float, float] = (0.0, 0.0, 0.0)  # per-modality distribution shift
    dims: tuple[int, int, int] | None = None  # None = the preset's feature dims
    seed: int = 0  # data seed, fixed across model seeds
    # None: each modality its own random map (the original data); a number in [0, 10]: one map shared by all
    # modalities, each modality's latent rotated and warped with this strength (0 = no gap; see miar.data.synthetic)
    warp: float | None = field(default=None, metadata=OPTIONAL)
    # in [0, 1]: share of the label's latent that is the product of one latent in text and one in audio
    interaction: float = field(default=0.0, metadata=OPTIONAL)


@dataclass(frozen=True)
class DataConfig:
    source: Literal["synthetic", "mosi", "mmsa", "mult"] = "synthetic"
    path: str | None = None  # mmsa/mult: the pickle; mosi: data root (None = $MIAR_DATA or ./data)
    # mosi: bc-LSTM 1447/752, standard 52/10/31 videos, bc_test_cv: grouped k-fold cross-validation inside the
    # 31 bc test videos (where the released features are honest), or all_cv: grouped k-fold cross-validation over
    # all 93 videos (leak-free features only: an offline text encoder and audio; miar.data.cv)
    split: Literal["bc", "standard", "bc_test_cv", "all_cv"] = "bc"
    modalities: tuple[str, ...] = ("text", "audio", "vision")
    text_features: Literal["cnn", "minilm", "mpnet", "static"] = "cnn"  # mosi text features
    text_granularity: Literal["utterance", "token"] = "utterance"  # token: per-token encoder states
    context: int = 0  # mosi: neighbouring utterances on each side of the target
    n_valid_videos: int = 10  # bc, bc_test_cv, all_cv: whole training(-fold) videos held out for validation
    valid_seed: int = 0  # which videos are held out (fixed across model seeds)
    cv_folds: int = field(default=5, metadata=OPTIONAL)  # bc_test_cv, all_cv: folds of whole videos
    cv_fold: int = field(default=0, metadata=OPTIONAL)  # bc_test_cv, all_cv: the test fold, 0..cv_folds-1
    cv_repeat: int = field(default=0, metadata=OPTIONAL)  # bc_test_cv, all_cv: which fold assignment (one per repeat)
    standardize: bool = True  # z-score with training statistics
    batch_size: int = 32
    bucket: bool = True  # training batches of similar length (no effect with context windows or equal lengths)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass(frozen=True)
class ModelConfig:
    name: Literal["miar", "text_only", "early_fusion", "late_fusion", "bclstm", "mult", "misa"] = "miar"
    d_model: int = 64  # shared width after projection [inferred]
    n_heads: int = 4
    n_layers: int = 1  # contextual encoder layers per modality [inferred]
    encoder: Literal["transformer", "lstm", "none"] = "transformer"  # contextual encoder [inferred]
    norm: Literal["layernorm", "batchnorm", "none"] = "layernorm"  # after projection [inferred]
    dropout: float = 0.1
    interaction: bool = True  # False: tokens are pooled per-modality features (ablation)
    # query: QueryTokens (per-modality queries), directed: DirectedTokens (MulT-like text<-m and m<-text), joint:
    # JointTokens (one masked transformer); the first names h1, h2, h3 still load, with a deprecation warning
    token_scheme: Literal["query", "directed", "joint"] = "query"  # how the feature tokens are formed [inferred]
    n_tokens: Literal[3, 4] = 4  # 4 = L, A, V + fused M (the abstract's four tokens)
    gate: bool = False  # learned gate over the tokens (unequal contributions) [inferred]
    head_hidden: int = 64
    proj_dim: int = 32  # contrastive projection width [inferred]
    # where MIAR's contrastive term acts: on the feature tokens after the interaction, or on the pooled
    # unimodal features before it (the common reading in contrastive MSA work)
    contrast_on: Literal["tokens", "pooled"] = field(default="tokens", metadata=OPTIONAL)  # [inferred]
    max_len: int = 512  # longest sequence the positional table covers
    # text as the token sequence of a pretrained encoder (miar.model.text_backbone); none: data.text_features
    text_backbone: Literal["none", "minilm", "mpnet"] = field(default="none", metadata=OPTIONAL)
    # frozen: no backbone weight trains; top:K: the last K layers train (the frozen lower layers run once per
    # run, their outputs cached); full: every layer and the embeddings train
    finetune: Literal[FINETUNE] = field(default="frozen", metadata=OPTIONAL)
    # baselines only (MISA's auxiliary losses, weights as in the MISA paper's MOSI setting)
    misa_sim_weight: float = 1.0  # modality-invariant similarity (CMD)
    misa_diff_weight: float = 0.3  # invariant/specific orthogonality
    misa_recon_weight: float = 1.0  # reconstruction of each modality's pooled feature


@dataclass(frozen=True)
class LossConfig:
    task: Literal["l1", "mse"] = "l1"  # [inferred]
    contrastive: Literal["infonce", "supcon", "none"] = "infonce"  # [inferred]
    weight: float = 0.1  # lambda on the contrastive term [inferred]
    temperature: float = 0.07  # initial value if learnable [inferred]
    learnable_temperature: bool = False
    pairs: Literal["modal", "all"] = "modal"  # modal: LA, LV, AV; all: also M with each


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 0
    cosine: bool = True  # cosine decay after warm-up
    grad_clip: float = 1.0  # max gradient norm (0 = off)
    patience: int = 8  # early stopping on the selection criterion
    criterion: str = "mae"  # validation metric for selection (a compute_all key)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["none", "bf16"] = "none"  # bf16 autocast (CUDA)
    backbone_lr: float = field(default=5e-5, metadata=OPTIONAL)  # learning rate of the text backbone's weights
    layer_decay: float = field(default=1.0, metadata=OPTIONAL)  # in (0, 1]: backbone layer i from the top
    #                                                             trains at backbone_lr * layer_decay**i
    threads: int = 1  # torch CPU threads (0 = all cores); tiny models run fastest on 1, sweeps
    #                   parallelise across runs, and a fixed count keeps CPU results bit-identical
    progress: bool = True
    save_model: bool = False  # also write model.pt (state dict) into the run record
    # false: the test split is never evaluated (a tuning trial of miar tune: selection sees validation data only);
    # metrics.json's test block is null and predictions.csv holds the header only
    evaluate_test: bool = field(default=True, metadata=OPTIONAL)


@dataclass(frozen=True)
class Config:
    name: str = "default"
    seed: int = 1111
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# ----------------------------------------------------------------------------- renamed values

def upgrade(data: dict, where: str) -> dict:
    """``data`` (a YAML delta or an override) with an old ``model.token_scheme`` name (h1, h2, h3) replaced by
    its new one, and a one-line deprecation warning naming ``where``; other data is returned as is."""
    model = data.get("model") if isinstance(data, dict) else None
    old = model.get("token_scheme") if isinstance(model, dict) else None
    if not isinstance(old, str) or old not in LEGACY_TOKEN_SCHEMES:
        return data
    new = LEGACY_TOKEN_SCHEMES[old]
    warnings.warn(f"{where}: model.token_scheme={old} is deprecated, use {new}", FutureWarning, stacklevel=2)
    return {**data, "model": {**model, "token_scheme": new}}


_SCHEME_LINE = re.compile(r"^(\s+token_scheme: )(query|directed|joint)$", re.MULTILINE)
_OLD_NAME = {new: old for old, new in LEGACY_TOKEN_SCHEMES.items()}


def identity(config_yaml: str) -> str:
    """A resolved config's identity: its text as records spelled it before ``token_scheme`` was renamed, so a
    committed record (``h1``) and the same config dumped today (``query``) are one run, and digests of
    configs (a tuning study's) do not change. Compare and hash configs through this, never the raw text."""
    return _SCHEME_LINE.sub(lambda m: m.group(1) + _OLD_NAME[m.group(2)], config_yaml)


# ----------------------------------------------------------------------------- files

def _read_yaml(path: Path) -> dict:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (undecodable byte at offset {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def experiment_path(experiment: str) -> Path:
    """A name in ``miar/experiments/`` or a path to a YAML file."""
    p = Path(experiment)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise ConfigError(f"{p}: no such config file")
        return p
    if not isinstance(experiment, str) or not experiment or "/" in experiment or "\\" in experiment \
            or experiment.startswith("."):
        raise ConfigError(f"experiment {experiment!r}: not a name in miar/experiments/ nor a .yaml path")
    p = EXPERIMENTS_DIR / f"{experiment}.yaml"
    if experiment in DECLARATIONS:
        raise ConfigError(f"{p}: a study declaration, not an experiment (known: {', '.join(list_experiments())})")
    if not p.is_file():
        known = ", ".join(list_experiments())
        raise ConfigError(f"unknown experiment '{experiment}' (known: {known})")
    return p


def list_experiments() -> list[str]:
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml") if p.stem not in DECLARATIONS)


def _resolve(path: Path, seen: tuple[str, ...] = ()) -> Config:
    data = _read_yaml(path)
    base = data.pop("base", None)
    if base is not None:
        if base in seen:
            raise ConfigError(f"{path}: circular 'base: {base}'")
        cfg = _resolve(experiment_path(base), seen + (base,))
    else:
        cfg = Config()
    try:
        return merge(cfg, upgrade(data, str(path)))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def load(experiment: str, overrides: list[str] | dict | None = None, seed: int | None = None) -> Config:
    """Resolve an experiment (name or YAML path), then overrides, then the seed."""
    path = experiment_path(experiment)
    cfg = _resolve(path)
    if "name" not in _read_yaml(path) and path.parent == EXPERIMENTS_DIR:
        cfg = replace(cfg, name=path.stem)
    if isinstance(overrides, dict):
        cfg = merge(cfg, upgrade(overrides, "overrides"))
    else:
        for o in overrides or []:
            cfg = merge(cfg, upgrade(parse_override(o), "override"))
    if seed is not None:
        cfg = replace(cfg, seed=check_value(seed, int, "seed"))
    return validate(cfg)


def dump(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


__all__ = ["Config", "DataConfig", "ModelConfig", "LossConfig", "TrainConfig", "SyntheticConfig",
           "ConfigError", "load", "merge", "to_dict", "dump", "identity", "parse_override", "list_experiments",
           "upgrade"]
