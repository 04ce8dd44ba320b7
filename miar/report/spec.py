"""The specification gap: every choice the abstract leaves open (:data:`SPEC`), our default read from the
config, the alternatives the config allows, whether it is marked ``[inferred]``, and the ablations that vary it."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pandas as pd

from miar.report.study import MAIN

SPEC = (  # choice the abstract leaves open, config key, ablation variants of MAIN that vary it
    ("How the four feature tokens are formed", "model.token_scheme", ("h2", "h3")),
    ("How many tokens (the abstract: four)", "model.n_tokens", ("tokens3",)),
    ("Whether tokens come from cross-modal interaction at all", "model.interaction", ("no_interaction",)),
    ("Normalization after projecting to the shared width", "model.norm", ("no_norm",)),
    ("z-scoring raw features with training statistics", "data.standardize", ()),
    ("Contextual encoder per modality", "model.encoder", ()),
    ("Shared width", "model.d_model", ()),
    ("Encoder and interaction depth", "model.n_layers", ()),
    ("Contrastive projection width", "model.proj_dim", ()),
    ("Where the contrastive term acts: feature tokens or pooled unimodal features", "model.contrast_on", ()),
    ("Contrastive loss", "loss.contrastive", ("supcon", "no_contrastive")),
    ("Weight of the contrastive term (lambda)", "loss.weight", ("weight0.3", "no_contrastive")),
    ("Temperature", "loss.temperature", ()),
    ("Learnable temperature", "loss.learnable_temperature", ("learnable_temp",)),
    ("Which token pairs are contrasted", "loss.pairs", ()),
    ("Unequal modality contributions: a gate over the tokens", "model.gate", ("gate",)),
    ("Task loss", "loss.task", ()),
    ("Neighbouring utterances as context", "data.context", ("context0",)),
    ("Text features", "data.text_features", ("minilm", "mpnet", "static")),
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


def main_config():
    """(name, Config) of the study's main experiment (``mosi_bc_miar``; ``mosi`` before it existed)."""
    from miar import config as C

    for name in (MAIN, "mosi"):
        try:
            return name, C.load(name)
        except C.ConfigError:
            continue
    return "default", C.Config()


def study_overrides(sweep: str = "study") -> dict[str, list[str]]:
    """Experiment display name -> its overrides in the study sweep ({} when the sweep does not resolve)."""
    try:
        from miar.study.plan import load_sweep

        _, runs = load_sweep(sweep)
    except Exception:  # a sweep being edited must not break the book; the table then says "planned"
        return {}
    skip = ("name=", "train.save_model=", "train.progress=")  # bookkeeping, not part of the ablation
    return {r.display: [o for o in r.overrides if not o.startswith(skip)] for r in runs}


def spec_table(cfg, overrides: dict[str, list[str]], base: str = MAIN) -> pd.DataFrame:
    """The specification-gap table: choice, our default (read from the config), alternatives, key, ablation."""
    inferred = set(inferred_keys())
    rows = []
    for choice, key, abl in SPEC:
        ablation = []
        swept = [n.split("+", 1)[1] for n, ov in overrides.items() if n.startswith(base + "+")
                 and any(o.split("=", 1)[0] == key for o in ov)]
        for v in dict.fromkeys([*swept, *abl]):
            name = f"{base}+{v}"
            ov = overrides.get(name)
            ablation.append(f"`+{v}` ({', '.join(f'`{o}`' for o in ov) if ov else 'planned'})")
        rows.append({"Choice left open": choice, "Our default": f"`{config_value(cfg, key)}`",
                     "Alternatives": _alternatives(cfg, key), "Config key": f"`{key}`" +
                     (" [inferred]" if key in inferred else ""), "Ablation": "; ".join(ablation) or "-"})
    return pd.DataFrame(rows)
