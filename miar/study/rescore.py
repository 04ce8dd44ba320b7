"""Tuning trials re-scored with more seeds: less noisy selection among the configurations a search already tried.

A search (``miar tune``) scores each trial by the mean validation criterion of its seeds (2 in the study's
searches); one trial's standard error then exceeded the spread between good trials, so the chosen trial was partly
chosen by noise. Re-scoring runs every complete trial of a study again with more seeds (validation only, the test
split never evaluated), into the same run directories as the trial's own (``runs/<study>+t<NNNN>/s<seed>``), and
chooses by the mean over all of them (designs/all_cv.yaml, "tuning").

- ``miar rescore STUDY... --seeds 3 4``: writes the sweep of the extra runs (``<tune>/rescored/rescore.yaml``) and
  executes it like any sweep (resumable; complete runs are skipped), then reports;
- the report (:func:`report`) writes ``<tune>/rescored/<study>-best.yaml`` (what a sweep entry's ``tuned:`` reads
  with ``tuned_dir: results/tune/rescored``) and ``<tune>/rescored/trials.csv``: per trial, the mean, standard
  deviation and standard error over its seeds; per study, the spread of the trial means beside one trial's noise.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import yaml

from miar.atomic import write_together
from miar.config import identity
from miar.errors import ConfigError
from miar.records import csv_text
from miar.study.tune import fmt

RESCORED = "rescored"


def _study(tune_dir: Path, name: str):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = tune_dir / f"{name}.db"
    if not db.is_file():
        raise ConfigError(f"{db}: no study (run miar tune {name} first)")
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def trials_of(tune_dir: Path, name: str) -> list[tuple[int, list[str]]]:
    """(trial number, its overrides) of every complete trial of study ``name``, in trial order."""
    from optuna.trial import TrialState
    study = _study(tune_dir, name)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not done:
        raise ConfigError(f"{tune_dir / (name + '.db')}: study {name} has no complete trial")
    return [(t.number, [f"{k}={fmt(v)}" for k, v in sorted(t.params.items())]) for t in done]


def recorded(tune_dir: Path, name: str, number: int) -> tuple[str, list[str]] | None:
    """(experiment, overrides) that trial ``number`` ran with, from its first executed notebook's parameters (the
    sampled values, ``train.evaluate_test=false`` and the search's own ``--set`` values), without the ``name=``
    its variant adds; None without a notebook."""
    for nb in sorted((tune_dir / "notebooks" / f"{name}+t{number:04d}").glob("s*.ipynb")):
        params = json.loads(nb.read_text()).get("metadata", {}).get("papermill", {}).get("parameters", {})
        if isinstance(params.get("overrides"), list) and isinstance(params.get("experiment"), str):
            return params["experiment"], [o for o in params["overrides"] if not str(o).startswith("name=")]
    return None


def sweep(tune_dir: Path, names: list[str], seeds: list[int]) -> dict:
    """The sweep of the extra seeds: one entry per complete trial with what the trial ran (its notebook's
    parameters; else its sampled values with no test evaluation)."""
    runs = []
    for name in names:
        for number, overrides in trials_of(tune_dir, name):
            experiment, overrides = recorded(tune_dir, name, number) or (name, [*overrides, "train.evaluate_test=false"])
            runs.append({"experiment": experiment, "variant": f"t{number:04d}", "overrides": overrides,
                         "seeds": list(seeds)})
    return {"description": f"re-scoring of {', '.join(names)} with seeds {seeds} (miar rescore)",
            "notebook": "train.ipynb", "runs": runs}


def _values(tune_dir: Path, name: str, number: int, criterion: str) -> dict[int, float]:
    """Seed -> the validation criterion of trial ``number``'s complete records, whose configs must be one
    configuration (equal but for the seed): a re-scored seed that trained anything else is refused."""
    out, configs = {}, {}
    for m in sorted((tune_dir / "runs" / f"{name}+t{number:04d}").glob("s*/metrics.json")):
        seed = int(m.parent.name[1:])
        out[seed] = float(json.loads(m.read_text())["valid"][criterion])
        text = identity((m.parent / "config.yaml").read_text())  # a seed written before token_scheme's rename is alike
        configs[seed] = [ln for ln in text.splitlines() if not ln.startswith("seed:")]
    if len({tuple(c) for c in configs.values()}) > 1:
        raise ConfigError(f"{tune_dir / 'runs' / f'{name}+t{number:04d}'}: its seeds' config.yaml differ beyond the "
                          f"seed; a re-scored trial must be the same configuration")
    return out


def report(tune_dir: str | Path, names: list[str], seeds: list[int]) -> list[dict]:
    """Choose each study's trial by the mean over ``seeds`` (every one of them must have run); write the chosen
    configurations and the per-trial table; return the per-study summary rows."""
    tune_dir = Path(tune_dir)
    rows, summary, files = [], [], {}
    for name in names:
        settings = _study(tune_dir, name).user_attrs.get("settings", {})
        criterion = settings.get("criterion", "mae")
        trials = []
        for number, overrides in trials_of(tune_dir, name):
            vals = _values(tune_dir, name, number, criterion)
            missing = sorted(set(seeds) - set(vals))
            if missing:
                raise ConfigError(f"{tune_dir / 'runs' / f'{name}+t{number:04d}'}: no complete record for seed(s) "
                                  f"{missing}; run miar rescore {name} --seeds {' '.join(map(str, seeds))}")
            v = [vals[s] for s in seeds]
            sd = statistics.stdev(v) if len(v) > 1 else math.nan
            trials.append({"study": name, "trial": number, "n_seeds": len(v), f"valid_{criterion}_mean": statistics.fmean(v),
                           f"valid_{criterion}_sd": sd, "se": sd / math.sqrt(len(v)), "overrides": overrides})
        best = min(trials, key=lambda t: (t[f"valid_{criterion}_mean"], t["trial"]))
        means = [t[f"valid_{criterion}_mean"] for t in trials]
        summary.append({"study": name, "trials": len(trials), "seeds": len(seeds), "chosen_trial": best["trial"],
                        f"chosen_valid_{criterion}": best[f"valid_{criterion}_mean"],
                        "trial_spread_sd": statistics.stdev(means),
                        "trial_noise_se_median": statistics.median(t["se"] for t in trials)})
        chosen = {"study": name, "trial": best["trial"], f"valid_{criterion}": best[f"valid_{criterion}_mean"],
                  "seeds": list(seeds), "complete_trials": len(trials), "overrides": best["overrides"]}
        files[tune_dir / RESCORED / f"{name}-best.yaml"] = (
            f"# written by miar rescore: the trial of {name} with the lowest mean validation {criterion} over seeds "
            f"{seeds} (the test split never evaluated)\n" + yaml.safe_dump(chosen, sort_keys=False))
        rows += [{k: v for k, v in t.items() if k != "overrides"} for t in trials]
    (tune_dir / RESCORED).mkdir(parents=True, exist_ok=True)
    files[tune_dir / RESCORED / "trials.csv"] = csv_text(rows)
    files[tune_dir / RESCORED / "studies.csv"] = csv_text(summary)
    write_together(files)
    return summary


def run(names: list[str], seeds: list[int], tune_dir: str | Path = "results/tune", cluster: dict | None = None,
        stop_after: float | None = None) -> int:
    """Run the extra seeds of every trial of ``names`` (a sweep; complete runs skipped), then report over the
    studies' own seeds and ``seeds``; the sweep's exit code (0 done, 1 failures, 3 stopped by ``stop_after``)."""
    from miar.study.executor import run_sweep
    tune_dir, cluster = Path(tune_dir), dict(cluster or {})
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"--seeds: {seeds} must be distinct non-negative integers")
    own = {tuple(_study(tune_dir, n).user_attrs.get("settings", {}).get("seeds", [])) for n in names}
    if len(own) != 1 or set(seeds) & set(next(iter(own))):
        raise ConfigError(f"--seeds {seeds}: the studies must share their own seeds and the new ones must differ "
                          f"from them (theirs: {sorted(own)})")
    path = tune_dir / RESCORED / "rescore.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_together({path: "# written by miar rescore\n" + yaml.safe_dump(sweep(tune_dir, names, seeds), sort_keys=False)})
    rc = run_sweep(str(path), results=tune_dir, workers=cluster.get("workers", 1), scheduler=cluster.get("scheduler"),
                   scheduler_file=cluster.get("scheduler_file"), gpus_per_run=cluster.get("gpus_per_run", 0),
                   stop_after=stop_after)
    if rc == 0:
        for row in report(tune_dir, names, [*next(iter(own)), *seeds]):
            print(f"rescore {row['study']}: trial t{row['chosen_trial']:04d} chosen over {row['seeds']} seeds; "
                  f"trial spread (sd of means) {row['trial_spread_sd']:.4f}, one trial's noise (median se) "
                  f"{row['trial_noise_se_median']:.4f}")
    return rc


__all__ = ["RESCORED", "report", "run", "sweep", "trials_of"]
