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
``DIR/<experiment>-best.yaml``, the chosen values that a sweep entry ``tuned: <experiment>`` applies
(:mod:`miar.study.tune_report`).
``DIR`` is ``results/tune`` by default, apart from the study's results (``miar collect`` never sees trials).

A study is bound to its definition (:mod:`miar.study.tune_identity`: the resolved experiment config's digest and
the ``--set`` overrides are stored and checked on resume, and the reports carry the overrides), never overwrites
another study's complete trial records, and can be shared by several drivers (:mod:`miar.study.tune_share`).
A storage on a database server is checked before any work starts (:mod:`miar.study.tune_storage`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path

from miar import config as C
from miar.errors import ConfigError
from miar.study.arguments import check_results, check_storage, check_tune
from miar.study.lock import results_lock
from miar.study.plan import Run, _entry_runs, notebooks_dir, status
from miar.study.spaces import Param, load_enqueue, load_space, space_path
from miar.study.tasks import stall_timeout
from miar.study.tune_identity import definition, mismatch, refusal, refuse_overwrite
from miar.study.tune_share import Driver, create_storage
from miar.study.tune_storage import check_server

WAIT_S = 5.0  # how often a driver whose remaining trials another live driver runs looks again

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
    """Create or load the study; a loaded one must have been made with the same settings (one line if not).
    A definition key the study never stored (one older than :mod:`~miar.study.tune_identity`) is recorded now."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "minimize" if settings["criterion"] in LOWER_IS_BETTER else "maximize"
    study = optuna.create_study(study_name=name, storage=_storage(url), direction=direction, load_if_exists=True)
    stored = study.user_attrs.get("settings")
    if stored is None:
        study.set_user_attr("settings", settings)
        for params in enqueue or []:
            study.enqueue_trial(params, skip_if_exists=True)
    elif (key := mismatch(stored, settings)) is not None:
        raise refusal(url, name, key, stored.get(key), settings[key])
    elif set(settings) - set(stored):
        study.set_user_attr("settings", {**stored, **settings})
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


def _batch(study, space, settings: dict, n_trials: int, driver: Driver) -> list:
    """The trials this driver runs now: those asked and never told whose driver is gone (a crashed one's),
    topped up to a batch; a live driver's trials are left to it (empty when it runs all that remain)."""
    from optuna.trial import TrialState
    with driver.asking():
        running = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
        orphans = [t for t in running if not driver.alive(t.user_attrs.get("driver"))]
        batch = []
        for t in orphans:
            driver.claim(study, t._trial_id)
            batch.append(_complete(study, t, space, settings))
        held = len(running) - len(orphans)  # by live drivers
        while len(batch) < min(settings["batch"], n_trials - _finished(study) - held):
            batch.append(_ask(study, space, settings))
            driver.claim(study, batch[-1]._trial_id)
    return sorted(batch, key=lambda t: t.number)


def run_tune(experiment: str, space: str | None = None, trials: int = 20, seeds=(1111,),
             results: str | Path = "results/tune", storage: str | None = None, sampler: str = "tpe",
             sampler_seed: int = 0, enqueue: str | None = None, cluster: dict | None = None,
             overrides: tuple[str, ...] = (), progress: bool = True) -> int:
    """Run the search until ``trials`` trials are finished; 0 when none failed."""
    results, cluster = check_results(results), dict(cluster or {})
    check_tune(trials, seeds, cluster.get("batch"), cluster.get("workers", 1))
    stall_timeout()  # $MIAR_WORKER_STALL_S
    name, params = Path(experiment).stem, load_space(space_path(experiment, space), experiment)
    plan = _plan(experiment, params, trials, seeds, sampler, sampler_seed, cluster, enqueue)
    settings = {**plan["settings"], **definition(experiment, tuple(overrides))}
    url = storage or f"sqlite:///{results / (name + '.db')}"
    check_storage(url, parent_made=storage is None)
    check_server(url)  # a database server: reachable, its driver installed, a login accepted
    results.mkdir(parents=True, exist_ok=True)
    with results_lock(results), Driver(url) as driver:
        with driver.asking():
            create_storage(url)
            study = open_study(name, url, settings, plan["enqueue"])
        if _finished(study) >= trials:
            print(f"tune {name}: {_finished(study)} of {trials} trials finished; nothing to run")
        search = {"name": name, "experiment": experiment, "space": params, "settings": settings, "trials": trials,
                  "results": results, "overrides": overrides, "progress": progress}
        _search(study, search, driver, cluster)
    return 1 if any(t.state.name == "FAIL" for t in study.trials) else 0


def _search(study, s: dict, driver: Driver, cluster: dict) -> None:
    """Ask, run and tell batches until ``s["trials"]`` are finished. The cluster starts when a run must
    execute, so a refusal (a record another study wrote) comes before any worker, and a finished study starts none."""
    from miar.study import engine
    from miar.study.executor import execute_on

    results, settings, client = s["results"], s["settings"], None
    with contextlib.ExitStack() as stack:
        while _finished(study) < s["trials"]:
            batch = _batch(study, s["space"], settings, s["trials"], driver)
            if not batch:  # another live driver runs every trial that remains
                time.sleep(WAIT_S)
                continue
            runs = _runs_of(study, batch, s["experiment"], settings["seeds"], s["overrides"])
            batch = [t for t in batch if t.number in runs]
            refuse_overwrite(runs, results, status)
            todo = [r for rs in runs.values() for r in rs if status(r, results) != "done"]
            print(f"tune {s['name']}: trials {', '.join(f't{t.number:04d}' for t in batch)} "
                  f"({len(todo)} runs to execute, {_finished(study)} of {s['trials']} finished)")
            if todo and client is None:
                client = stack.enter_context(engine.connect(**cluster))
            failures = execute_on(client, todo, notebooks_dir() / "train.ipynb", results, f"tune {s['name']}",
                                  s["progress"], gpus_per_run=cluster.get("gpus_per_run", 0)) if todo else []
            _tell(study, batch, runs, results, settings["criterion"], {k for k, _ in failures}, driver)


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


def _tell(study, batch, runs: dict, results: Path, criterion: str, failed: set, driver: Driver) -> None:
    """Tell each trial this driver still holds (one another driver took over and told is left as it is)."""
    from optuna.trial import TrialState
    for t in batch:
        rs, now = runs[t.number], study._storage.get_trial(t._trial_id)
        if now.state != TrialState.RUNNING or now.user_attrs.get("driver") != driver.token:
            print(f"  t{t.number:04d}: told by another driver ({now.state.name}); left as it is")
        elif any(r.key in failed or status(r, results) != "done" for r in rs):
            study.tell(t.number, state=TrialState.FAIL)
        else:
            study.tell(t.number, _value(rs, results, criterion))


__all__ = ["fmt", "open_study", "run_tune", "trial_runs"]
