"""``miar tune EXPERIMENT``: an equal-budget hyperparameter search with Optuna, its trials run like sweep runs.

The driver alone talks to the study (Optuna's ask/tell; storage ``DIR/<experiment>.db``, SQLite, by default, or
``--storage URL``: an RDB URL or ``journal:FILE``). Each trial is an ordinary run record per seed,
``DIR/runs/<experiment>+t<NNNN>/s<seed>/``, whose config carries the sampled values as overrides plus
``train.evaluate_test=false``: trials never evaluate the test split, and a trial's value is its validation
criterion (``train.criterion``, MAE by default) averaged over its seeds. The runs go through the sweep's
executor on Dask (:func:`miar.study.executor.execute_on`), one batch of trials (as many as workers) at a time:
the batch is asked, run, then told, so the search is a function of the sampler seed and the batch size only.
Each ask uses a sampler seeded by ``(seed, trial number)``, so a driver restarted after a crash (even SIGKILL)
asks exactly what the first would have: a trial asked but not told is told from its records when they are
complete and re-run with the same parameters otherwise, and the finished study equals an uninterrupted one.

``--enqueue FILE`` adds known configurations first (:func:`miar.study.spaces.load_enqueue`; the baselines'
published ones ship in ``miar/experiments/spaces/enqueue/``). ``--report`` prints the best trials and writes
``DIR/<experiment>-confirm.yaml``, a sweep that runs the best configuration with N seeds and the test split, and
``DIR/<experiment>-best.yaml``, the chosen values that a sweep entry ``tuned: <experiment>`` applies.
``DIR`` is ``results/tune`` by default, apart from the study's results (``miar collect`` never sees trials).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from miar import config as C
from miar.errors import ConfigError
from miar.staged import write_together
from miar.study.arguments import check_results, check_storage, check_tune
from miar.study.lock import results_lock
from miar.study.plan import Run, _entry_runs, notebooks_dir, status
from miar.study.spaces import Param, load_enqueue, load_space, space_path

LOWER_IS_BETTER = {"mae", "mse", "rmse"}


def fmt(v) -> str:
    """A value as an override reads it back exactly (YAML needs a dot in ``1.0e-05``)."""
    if isinstance(v, float):
        r = repr(v)
        mant, _, exp = r.partition("e")
        return f"{mant if '.' in mant else mant + '.0'}{'e' + exp if exp else ''}"
    return json.dumps(v) if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)


def trial_runs(experiment: str, number: int, params: dict, seeds: list[int], extra: tuple = ()) -> list[Run]:
    """The runs of trial ``number``: one per seed, sampled values as overrides, the test split never evaluated."""
    overrides = [f"{k}={fmt(v)}" for k, v in sorted(params.items())] + ["train.evaluate_test=false", *extra]
    entry = {"experiment": experiment, "variant": f"t{number:04d}", "overrides": overrides, "seeds": seeds}
    return _entry_runs(entry, seeds, f"trial {number}")


def _storage(url: str):
    import optuna  # lazy: the notebooks extra
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend
        return optuna.storages.JournalStorage(JournalFileBackend(url[len("journal:"):]))
    return url


def _settings(space: tuple[Param, ...], seeds, sampler: str, seed: int, batch: int, criterion: str) -> dict:
    digest = hashlib.sha256(repr(space).encode()).hexdigest()[:16]
    return {"space": digest, "seeds": list(seeds), "sampler": sampler, "sampler_seed": seed, "batch": batch,
            "criterion": criterion}


def open_study(name: str, url: str, settings: dict, enqueue: list[dict] | None):
    """Create or load the study; a loaded one must have been made with the same settings (one line if not)."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "minimize" if settings["criterion"] in LOWER_IS_BETTER else "maximize"
    study = optuna.create_study(study_name=name, storage=_storage(url), direction=direction, load_if_exists=True)
    stored = study.user_attrs.get("settings")
    if stored is None:
        study.set_user_attr("settings", settings)
        for params in enqueue or []:
            study.enqueue_trial(params, skip_if_exists=True)
    elif stored != settings:
        diff = next(k for k in settings if stored.get(k) != settings[k])
        raise ConfigError(f"{url}: study {name} was made with {diff}={stored.get(diff)!r}, not "
                          f"{settings[diff]!r}; resume it with the same settings or use another --storage")
    return study


def _sampler(settings: dict, number: int):
    """The sampler that draws trial ``number``: its state is a function of (seed, trial number) only."""
    import optuna
    seed = settings["sampler_seed"] * 1_000_003 + number
    return (optuna.samplers.TPESampler(seed=seed) if settings["sampler"] == "tpe"
            else optuna.samplers.RandomSampler(seed=seed))


def _ask(study, space: tuple[Param, ...], settings: dict):
    from optuna.trial import TrialState
    waiting = [t.number for t in study.trials if t.state == TrialState.WAITING]  # enqueued: asked first
    study.sampler = _sampler(settings, waiting[0] if waiting else len(study.trials))
    return study.ask({p.key: p.distribution() for p in space})


def _complete(study, frozen, space: tuple[Param, ...], settings: dict):
    """A trial a killed driver asked whose parameters were not all stored yet: draw the rest exactly as the
    first ask would have (the stored ones' draws are replayed and discarded), so the trial is the same."""
    import optuna
    from optuna import pruners
    if all(p.key in frozen.params for p in space):
        return frozen
    study.sampler = _sampler(settings, frozen.number)
    trial = optuna.trial.Trial(study, frozen._trial_id)
    fixed = frozen.system_attrs.get("fixed_params", {})
    for p in space:
        d = p.distribution()
        if p.key in frozen.params and p.key not in fixed and not d.single():
            study.sampler.sample_independent(pruners._filter_study(study, frozen), frozen, p.key, d)
        else:
            trial._suggest(p.key, d)
    return study._storage.get_trial(frozen._trial_id)


def _value(runs: list[Run], results: Path, criterion: str) -> float:
    vals = [json.loads((r.run_dir(results) / "metrics.json").read_text())["valid"][criterion] for r in runs]
    return float(sum(vals) / len(vals))


def _finished(study) -> int:
    from optuna.trial import TrialState
    return sum(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in study.trials)


def _batch(study, space, settings: dict, n_trials: int) -> list:
    """The trials to run now: those asked and never told (a crashed driver's), topped up to a batch."""
    from optuna.trial import TrialState
    running = [_complete(study, t, space, settings) for t in study.trials if t.state == TrialState.RUNNING]
    while len(running) < min(settings["batch"], n_trials - _finished(study)):
        running.append(_ask(study, space, settings))
    return sorted(running, key=lambda t: t.number)


def run_tune(experiment: str, space: str | None = None, trials: int = 20, seeds=(1111,),
             results: str | Path = "results/tune", storage: str | None = None, sampler: str = "tpe",
             sampler_seed: int = 0, enqueue: str | None = None, cluster: dict | None = None,
             overrides: tuple[str, ...] = (), progress: bool = True) -> int:
    """Run the search until ``trials`` trials are finished; 0 when none failed."""
    from miar.study import engine
    from miar.study.executor import execute_on

    results, cluster = check_results(results), dict(cluster or {})
    check_tune(trials, seeds, cluster.get("batch"), cluster.get("workers", 1))
    name, params = Path(experiment).stem, load_space(space_path(experiment, space), experiment)
    plan = _plan(experiment, params, trials, seeds, sampler, sampler_seed, cluster, enqueue)
    url = storage or f"sqlite:///{results / (name + '.db')}"
    check_storage(url, parent_made=storage is None)
    results.mkdir(parents=True, exist_ok=True)
    with results_lock(results):
        study = open_study(name, url, plan["settings"], plan["enqueue"])
        if _finished(study) >= trials:  # nothing to run: no cluster is started
            print(f"tune {name}: {_finished(study)} of {trials} trials finished; nothing to run")
            return 1 if any(t.state.name == "FAIL" for t in study.trials) else 0
        with engine.connect(**cluster) as client:
            while _finished(study) < trials:
                batch = _batch(study, params, plan["settings"], trials)
                runs = _runs_of(study, batch, experiment, plan["settings"]["seeds"], overrides)
                batch = [t for t in batch if t.number in runs]
                todo = [r for rs in runs.values() for r in rs if status(r, results) != "done"]
                print(f"tune {name}: trials {', '.join(f't{t.number:04d}' for t in batch)} "
                      f"({len(todo)} runs to execute, {_finished(study)} of {trials} finished)")
                failures = execute_on(client, todo, notebooks_dir() / "train.ipynb", results, f"tune {name}",
                                      progress, gpus_per_run=cluster.get("gpus_per_run", 0)) if todo else []
                _tell(study, batch, runs, results, plan["settings"]["criterion"], {k for k, _ in failures})
    return 1 if any(t.state.name == "FAIL" for t in study.trials) else 0


def _runs_of(study, batch: list, experiment: str, seeds: list[int], overrides: tuple) -> dict:
    """Each trial's runs; a trial whose sampled combination the config refuses is told failed at once."""
    from optuna.trial import TrialState
    runs = {}
    for t in batch:
        try:
            runs[t.number] = trial_runs(experiment, t.number, t.params, seeds, overrides)
        except ConfigError as e:
            print(f"  t{t.number:04d}: invalid combination, failed ({e})")
            study.tell(t.number, state=TrialState.FAIL)
    return runs


def _plan(experiment, params, trials, seeds, sampler, sampler_seed, cluster, enqueue) -> dict:
    if trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {trials}")
    if sampler not in ("tpe", "random"):
        raise ConfigError(f"--sampler must be tpe or random, got {sampler!r}")
    criterion = C.load(experiment).train.criterion
    batch = cluster.pop("batch", None) or cluster.get("workers", 1)  # trials asked, run and told together
    if batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {batch}")
    return {"settings": _settings(params, seeds, sampler, sampler_seed, batch, criterion),
            "enqueue": load_enqueue(Path(enqueue), params) if enqueue else None}


def _tell(study, batch, runs: dict, results: Path, criterion: str, failed: set) -> None:
    from optuna.trial import TrialState
    for t in batch:
        rs = runs[t.number]
        if any(r.key in failed or status(r, results) != "done" for r in rs):
            study.tell(t.number, state=TrialState.FAIL)
        else:
            study.tell(t.number, _value(rs, results, criterion))


def _load(name: str, url: str, experiment: str):
    """The stored study, read only: a missing or damaged storage, or no study of that name, is one line."""
    import optuna
    check_storage(url, must_exist=True)  # a report reads a study, never creates one
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
    best = done[0]
    sweep = {"description": f"confirms {name} trial t{best.number:04d} (miar tune --report) with the test split",
             "notebook": "train.ipynb", "seeds": list(range(1111, 1111 + confirm_seeds)),
             "runs": [{"experiment": experiment, "variant": "tuned",
                       "overrides": [f"{k}={fmt(v)}" for k, v in sorted(best.params.items())]}]}
    path = results / f"{name}-confirm.yaml"
    best_file = results / f"{name}-best.yaml"  # what a sweep entry's `tuned: NAME` reads (miar.study.plan)
    chosen = {"study": name, "experiment": experiment, "trial": best.number,
              f"valid_{settings['criterion']}": float(best.value), "seeds": list(settings["seeds"]),
              "sampler": settings["sampler"], "sampler_seed": settings["sampler_seed"],
              "complete_trials": len(done), "trials": len(study.trials),
              "overrides": [f"{k}={fmt(v)}" for k, v in sorted(best.params.items())]}
    write_together({  # unchanged files are left alone: a report with nothing new changes nothing in results/
        path: f"# {sweep['description']}\n" + yaml.safe_dump(sweep, sort_keys=False),
        best_file: f"# written by miar tune {experiment} --report: the trial chosen by mean validation "
                   f"{settings['criterion']} (the test split never evaluated)\n" + yaml.safe_dump(chosen, sort_keys=False)})
    print(f"wrote {path} (miar sweep {path}) and {best_file}")
    return 0


__all__ = ["fmt", "open_study", "report", "run_tune", "trial_runs"]
