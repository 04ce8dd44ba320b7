"""The specification gap: every choice the abstract leaves open (:data:`SPEC`), our default read from the
config, the alternatives the config allows, whether it is marked ``[inferred]``, and the ablations that vary it."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pandas as pd

from miar.report.catalog import MAIN, TUNING, variant

SPEC = (  # choice the abstract leaves open, config key, ablation variants of MAIN that vary it
    ("How the four feature tokens are formed", "model.token_scheme", ("directed", "joint")),
    ("How many tokens (the abstract: four)", "model.n_tokens", ("tokens3",)),
    ("Whether tokens come from cross-modal interaction at all", "model.interaction", ("no_interaction",)),
    ("Normalization after projecting to the shared width", "model.norm", ("no_norm", "batchnorm", "no_norm_noz")),
    ("z-scoring raw features with training statistics", "data.standardize", ("no_norm_noz",)),
    ("Contextual encoder per modality", "model.encoder", ()),
    ("Shared width (tuned)", "model.d_model", ("w128l2",)),
    ("Encoder and interaction depth (tuned)", "model.n_layers", ("w128l2",)),
    ("Contrastive projection width", "model.proj_dim", ()),
    ("Where the contrastive term acts: feature tokens or pooled unimodal features", "model.contrast_on",
     ("pooled",)),
    ("Contrastive loss", "loss.contrastive", ("supcon", "no_contrastive")),
    ("Weight of the contrastive term (lambda, tuned)", "loss.weight", ("no_contrastive",)),
    ("Temperature (tuned)", "loss.temperature", ()),
    ("Learnable temperature", "loss.learnable_temperature", ("learnable_temp",)),
    ("Which token pairs are contrasted", "loss.pairs", ()),
    ("Unequal modality contributions: a gate over the tokens", "model.gate", ("gate",)),
    ("Task loss", "loss.task", ()),
    ("Neighbouring utterances as context", "data.context", ("context0", "context8")),
    ("Text features", "data.text_features", ("minilm", "static")),
)


def inferred_keys() -> list[str]:
    """Dotted config keys whose definition in ``miar/config.py`` is marked ``[inferred]``."""
    from miar import config as C

    src = Path(C.__file__).read_text()
    lines = src.splitlines()
    section = {f.type if isinstance(f.type, str) else f.type.__name__: f.name
               for f in fields(C.Config) if f.name not in ("name", "seed")}
    keys = []
    for node in ast.parse(src).body:
        if isinstance(node, ast.ClassDef) and node.name in section:
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and "[inferred]" in lines[stmt.lineno - 1]:
                    keys.append(f"{section[node.name]}.{stmt.target.id}")
    return keys


def config_value(cfg, key: str):
    obj = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def shown_value(value) -> str:
    """A config value as a reader sees it: a float to 3 significant digits (a tuned learning rate
    ``0.0004405724506734873`` shows as ``0.000441``; the search's own resolution is coarser), anything else as is."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _alternatives(cfg, key: str) -> str:
    import typing

    section, name = key.split(".")
    tp = typing.get_type_hints(type(getattr(cfg, section)))[name]
    current = config_value(cfg, key)
    if typing.get_origin(tp) is typing.Literal:
        return ", ".join(f"`{a}`" for a in typing.get_args(tp) if a != current)
    if tp is bool:
        return f"`{not current}`"
    return "any " + ("number" if tp is float else "integer" if tp is int else getattr(tp, "__name__", str(tp)))


def main_config(results: str | Path = "results"):
    """(name, Config) of the study's main experiment: ``mosi_std_miar`` with the values its search chose
    (``results/tune/mosi_std_miar-best.yaml``; the untuned recipe until the search has run)."""
    from miar import config as C
    from miar.declared import tuned_overrides

    study = TUNING["miar"]
    try:
        overrides = tuned_overrides(study, Path(results) / "tune")
        name = MAIN
    except C.ConfigError:
        overrides, name = [], study
    try:
        return name, C.load(study, overrides=overrides)
    except C.ConfigError:
        return "default", C.Config()


def study_overrides(sweeps: tuple[str, ...] = ("ablations", "textgen")) -> dict[str, list[str]]:
    """Experiment display name -> the overrides its sweep entry adds (the ablation's delta, read from the sweep
    files as written: the tuned values an entry starts from are not part of it)."""
    from miar.declared import SWEEPS_DIR

    out = {}
    for sweep in sweeps:
        try:
            import yaml
            entries = yaml.safe_load((SWEEPS_DIR / f"{sweep}.yaml").read_text()).get("runs") or []
        except (OSError, ValueError, AttributeError):  # a sweep missing or being edited must not break the book
            continue
        for e in entries:
            if isinstance(e, dict) and e.get("variant"):
                stem = Path(str(e.get("experiment", ""))).stem
                out[f"{stem}+{e['variant']}"] = [o for o in e.get("overrides") or []
                                                  if not str(o).startswith(("train.save_model=", "train.progress="))]
    return out


def spec_table(cfg, overrides: dict[str, list[str]], base: str = MAIN) -> pd.DataFrame:
    """The specification-gap table: choice, our default (read from the config), alternatives, key, ablation."""
    inferred = set(inferred_keys())
    rows = []
    for choice, key, abl in SPEC:
        ablation = []
        prefix = variant("", base)
        swept = [n[len(prefix):] for n, ov in overrides.items() if n.startswith(prefix) and n != base
                 and any(o.split("=", 1)[0] == key for o in ov)]
        for v in dict.fromkeys([*swept, *abl]):
            ov = overrides.get(variant(v, base))
            ablation.append(f"`.{v}` ({', '.join(f'`{o}`' for o in ov) if ov else 'not in the ablations sweep'})")
        rows.append({"Choice left open": choice, "Our default": f"`{shown_value(config_value(cfg, key))}`",
                     "Alternatives": _alternatives(cfg, key), "Config key": f"`{key}`" +
                     (" [inferred]" if key in inferred else ""), "Ablation": "; ".join(ablation) or "-"})
    return pd.DataFrame(rows)
