"""``miar tune EXPERIMENT --report``: the best trials of a study and the files a sweep reads from them.

``DIR/<experiment>-confirm.yaml`` is a sweep that runs the best configuration with N seeds and the test split;
``DIR/<experiment>-best.yaml`` holds the chosen values that a sweep entry ``tuned: <experiment>`` applies, with
the ``--set`` overrides every trial ran with (:mod:`miar.study.tune_identity`). A report reads the study and never
creates a storage; files whose content would not change are left alone (:func:`miar.atomic.write_together`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from miar.atomic import write_together
from miar.errors import ConfigError
from miar.study.arguments import check_results, check_storage, check_tune
from miar.study.tune import _storage, fmt
from miar.study.tune_identity import stored_overrides
from miar.study.tune_storage import check_server


def _load(name: str, url: str, experiment: str):
    """The stored study, read only: a missing or damaged storage, or no study of that name, is one line."""
    import optuna
    check_storage(url, must_exist=True)  # a report reads a study, never creates one
    check_server(url)
    try:
        return optuna.load_study(study_name=name, storage=_storage(url))
    except KeyError:  # optuna: no study of that name in the storage
        raise ConfigError(f"{url}: holds no study {name} (run miar tune {experiment} first)") from None


def report(experiment: str, results: str | Path = "results/tune", storage: str | None = None, top: int = 5,
           confirm_seeds: int = 5) -> int:
    """Print the best trials and write the sweep that confirms the best one with ``confirm_seeds`` seeds."""
    import optuna
    from optuna.trial import TrialState
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results, name = check_results(results), Path(experiment).stem
    check_tune(confirm_seeds=confirm_seeds)
    url = storage or f"sqlite:///{results / (name + '.db')}"
    study = _load(name, url, experiment)
    settings = study.user_attrs["settings"]
    done = sorted((t for t in study.trials if t.state == TrialState.COMPLETE),
                  key=lambda t: (t.value if study.direction.name == "MINIMIZE" else -t.value, t.number))
    if not done:
        raise ConfigError(f"{url}: study {name} has no complete trial")
    print(f"tune {name}: {len(done)} complete of {len(study.trials)} trials; best by valid_{settings['criterion']} "
          f"(mean over seeds {settings['seeds']}; {settings['sampler']} sampler, seed {settings['sampler_seed']})")
    for t in done[:top]:
        print(f"  t{t.number:04d}  valid_{settings['criterion']} {t.value:.6f}  "
              + " ".join(f"{k}={fmt(v)}" for k, v in sorted(t.params.items())))
    extra = stored_overrides(settings)  # the --set every trial ran with: part of what was tuned
    if extra:
        print(f"  every trial with --set {' '.join(extra)}")
    paths = _write_choice(results, experiment, settings, done, len(study.trials), confirm_seeds)
    print(f"wrote {paths[0]} (miar sweep {paths[0]}) and {paths[1]}")
    return 0


def _write_choice(results: Path, experiment: str, settings: dict, done: list, n_trials: int,
                  confirm_seeds: int) -> tuple[Path, Path]:
    """``<name>-confirm.yaml`` and ``<name>-best.yaml`` for the best of ``done``: its sampled values, then the
    ``--set`` overrides every trial ran with (none stored by an older study)."""
    name, best, extra = Path(experiment).stem, done[0], stored_overrides(settings)
    chosen_overrides = [f"{k}={fmt(v)}" for k, v in sorted(best.params.items())] + extra
    sweep = {"description": f"confirms {name} trial t{best.number:04d} (miar tune --report) with the test split",
             "notebook": "train.ipynb", "seeds": list(range(1111, 1111 + confirm_seeds)),
             "runs": [{"experiment": experiment, "variant": "tuned", "overrides": chosen_overrides}]}
    path = results / f"{name}-confirm.yaml"
    best_file = results / f"{name}-best.yaml"  # what a sweep entry's `tuned: NAME` reads (miar.study.plan)
    chosen = {"study": name, "experiment": experiment, "trial": best.number,
              f"valid_{settings['criterion']}": float(best.value), "seeds": list(settings["seeds"]),
              "sampler": settings["sampler"], "sampler_seed": settings["sampler_seed"],
              "complete_trials": len(done), "trials": n_trials, "overrides": chosen_overrides}
    if "config" in settings:  # a study older than tune_identity stored neither
        chosen.update({"set": extra, "config_digest": settings["config"]})
    write_together({  # unchanged files are left alone: a report with nothing new changes nothing in results/
        path: f"# {sweep['description']}\n" + yaml.safe_dump(sweep, sort_keys=False),
        best_file: f"# written by miar tune {experiment} --report: the trial chosen by mean validation "
                   f"{settings['criterion']} (the test split never evaluated)\n" + yaml.safe_dump(chosen, sort_keys=False)})
    return path, best_file


__all__ = ["report"]
