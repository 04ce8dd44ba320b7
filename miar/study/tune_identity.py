"""What a tuning study is: the settings of its search plus the experiment it tunes, stored in the study.

A study stores, beside the search settings (:func:`miar.study.tune._settings`), the digest of the resolved
experiment config (the experiment file with every ``--set`` applied, before any sampled value) and the
``--set`` overrides themselves. Resuming with other overrides, or with another experiment file of the same name,
is refused with one line; a study written before these were stored (the committed ones in ``results/tune/``)
is accepted and gets them on its next write. ``--report`` reads the stored overrides back into the
configurations it writes, so a confirmed configuration is the one that was tuned.

Trial records are never overwritten: a trial whose run directory holds a complete record of another
configuration (another study in the same ``--results``, under another storage or sampler seed) stops the
search, one line, before anything is cleared.
"""

from __future__ import annotations

import hashlib

from miar import config as C
from miar.errors import ConfigError

DEFINITION_KEYS = ("overrides", "config")  # added to the stored settings by this module; absent in older studies


def definition(experiment: str, overrides: tuple[str, ...]) -> dict:
    """The resolved config's digest (sha256 of the config as a run record holds it) and the overrides."""
    cfg = C.identity(C.dump(C.load(experiment, overrides=list(overrides))))
    # overrides first: other --set values change the digest too, and the refusal names the cause
    return {"overrides": list(overrides), "config": hashlib.sha256(cfg.encode()).hexdigest()[:16]}


def mismatch(stored: dict, settings: dict) -> str | None:
    """The first setting whose stored value differs, or None; a definition key a study never stored matches."""
    for key, value in settings.items():
        if key in DEFINITION_KEYS and key not in stored:
            continue
        if stored.get(key) != value:
            return key
    return None


def refusal(url: str, name: str, key: str, stored, given) -> ConfigError:
    """The one-line error for resuming a study with another definition."""
    if key == "config":
        what = (f"another resolved experiment config (digest {stored}, now {given}: another experiment file "
                f"named {name}, or a changed one)")
    elif key == "overrides":
        what = f"--set {' '.join(stored) or '(none)'}, not {' '.join(given) or '(none)'}"
    else:
        what = f"{key}={stored!r}, not {given!r}"
    return ConfigError(f"{url}: study {name} was made with {what}; resume it with the same settings or use "
                       f"another --storage")


def stored_overrides(settings: dict) -> list[str]:
    """The ``--set`` overrides every trial ran with (none recorded by a study older than this module)."""
    return list(settings.get("overrides", []))


def refuse_overwrite(runs: dict, results, status) -> None:
    """Stop before a trial's runs replace a complete record of another configuration."""
    for rs in runs.values():
        for r in rs:
            if status(r, results) == "changed":
                raise ConfigError(f"{r.run_dir(results)}: holds a complete record of another configuration "
                                  f"(another study in this --results?); completed trial records are never "
                                  f"overwritten: use another --results")


__all__ = ["definition", "mismatch", "refusal", "refuse_overwrite", "stored_overrides"]
