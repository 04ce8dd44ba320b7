"""Strict conversion between nested frozen dataclasses and plain data, for :mod:`miar.config`.

:func:`merge` applies a nested dict to a dataclass: an unknown key or a value of the wrong type raises a
one-line :class:`~miar.errors.ConfigError` naming the dotted key. :func:`to_dict` is the way back (fields whose
metadata says ``omit_default`` are left out at their default), :func:`parse_override` reads ``"a.b=1"``.
Nothing here knows the study's config: any dataclass works.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import fields, is_dataclass, replace
from typing import Any, Literal

import yaml

from miar.errors import ConfigError

MAX_DEPTH = 32  # a config nests 3 levels; a value deeper than this is a mistake (or an attack on the parser)
FLOAT_TEXT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")  # YAML 1.2's float


def show(value: Any, width: int = 80) -> str:
    """``repr(value)`` cut to ``width`` characters: a message stays one readable line whatever was given."""
    r = repr(value)
    return r if len(r) <= width else f"{r[:width - 3]}..."


def check_value(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` coerced to annotation ``tp`` or raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _check_union(value, typing.get_args(tp), key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed or type(value) is not type(next(a for a in allowed if a == value)):
            raise ConfigError(f"{key}: {show(value)} is not one of {list(allowed)}")
        return value
    if origin is tuple:
        return _check_tuple(value, typing.get_args(tp), key)
    return _check_scalar(value, tp, key)


def _check_union(value: Any, args: tuple, key: str) -> Any:
    if value is None and type(None) in args:
        return None
    errors = []
    for a in args:
        if a is type(None):
            continue
        try:
            return check_value(value, a, key)
        except ConfigError as e:
            errors.append(str(e))
    raise ConfigError(errors[0] if errors else f"{key}: invalid value {show(value)}")


def _check_tuple(value: Any, args: tuple, key: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {show(value)}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(check_value(v, args[0], key) for v in value)
    if len(value) != len(args):
        raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
    return tuple(check_value(v, a, key) for v, a in zip(value, args))


def _check_scalar(value: Any, tp: Any, key: str) -> Any:
    if tp is float:
        if isinstance(value, str) and FLOAT_TEXT.fullmatch(value.strip()):  # YAML 1.1 reads 1e-3 as a string
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {type(value).__name__} {show(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {type(value).__name__} {show(value)}")
        return value
    if tp in (bool, str):
        if not isinstance(value, tp):
            raise ConfigError(f"{key}: expected {tp.__name__}, got {type(value).__name__} {show(value)}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover


def merge(cfg: Any, delta: dict, prefix: str = "") -> Any:
    """Return a copy of dataclass ``cfg`` with the nested dict ``delta`` applied, strictly."""
    if not isinstance(delta, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {show(delta)}")
    hints = typing.get_type_hints(type(cfg))
    names = {f.name for f in fields(cfg)}
    changes = {}
    for key, value in delta.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key '{full}' (valid: {', '.join(sorted(names))})")
        current = getattr(cfg, key)
        if is_dataclass(current):
            changes[key] = merge(current, value, f"{full}.")
        else:
            changes[key] = check_value(value, hints[key], full)
    return replace(cfg, **changes)


def to_dict(cfg: Any) -> dict:
    """Plain nested dict (tuples as lists) for YAML/JSON; ``OPTIONAL`` keys at their default are left out."""
    def conv(v):
        if is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in fields(v)
                    if not (f.metadata.get("omit_default") and getattr(v, f.name) == f.default)}
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v
    return conv(cfg)


def load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load(text)``, nested at most :data:`MAX_DEPTH` deep; else one line naming ``where``."""
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: cannot read YAML ({str(e).splitlines()[0]})") from None
    _check_depth(data, where)
    return data


def _check_depth(data: Any, where: str) -> None:
    """Refuse lists and mappings nested more than :data:`MAX_DEPTH` deep (walked without recursion)."""
    todo = [(data, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                raise ConfigError(f"{where}: nested deeper than {MAX_DEPTH} levels")
            todo += [(v, depth + 1) for v in (node.values() if isinstance(node, dict) else node)]


def parse_override(text: str) -> dict:
    """``"a.b=1"`` -> ``{"a": {"b": 1}}``; the value is parsed as YAML (numbers, bools, lists)."""
    if "=" not in text:
        raise ConfigError(f"override {show(text)} is not of the form key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    except RecursionError:
        raise ConfigError(f"override {key.strip()}: nested deeper than {MAX_DEPTH} levels") from None
    _check_depth(value, f"override {key.strip()}")
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out
