"""Command line: ``miar train``, ``features``, ``data``, ``list``, ``sweep``, ``tune``, ``align``, ``collect``, ``bench``.

User errors (every :class:`~miar.errors.UserError`: bad config, arguments, data, records) print one line naming
the file or argument and the problem and exit 2; arguments are checked before anything is created. Each command
imports what it runs when it runs (torch and papermill take seconds to import; ``miar list`` needs neither).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from miar import __version__
from miar.config import experiment_path, list_experiments
from miar.declared import list_sweeps, sweep_path
from miar.errors import UserError, os_error_line
from miar.interrupt import Terminated, install_sigint_watchdog
from miar.study.arguments import check_results

DESCRIPTION = "An open reproducibility study of MIAR on CMU-MOSI: train, sweep, align, collect, bench."


def _train(args) -> int:
    from miar import config as C
    from miar.paths import inside
    from miar.train import fit
    cfg = C.load(args.experiment, overrides=args.set, seed=args.seed)
    run_dir = (check_results(args.run_dir, "--run-dir") if args.run_dir is not None
               else inside("runs", f"{cfg.name}-s{cfg.seed}", what="name"))
    metrics = fit(cfg, run_dir, resume=args.resume, overwrite=args.overwrite)
    t = metrics["test"]
    print(f"{cfg.name} seed {cfg.seed}: best epoch {metrics['best_epoch']} (by {metrics['criterion']}); "
          f"test " + ", ".join(f"{k} {v:.4f}" for k, v in t.items()))
    print(f"run record: {run_dir}")
    return 0


def _features(args) -> int:
    from miar.data import data_root
    from miar.data.text_features import compute_features
    root = data_root(args.data)
    cache = Path(args.cache) if args.cache else None  # None: the loader's own default
    for enc in args.encoder:
        path, computed = compute_features(enc, root, cache, progress=True, force=args.force)
        print(f"{enc}: {path}" + ("" if computed else " (up to date: same encoder and transcripts; --force recomputes)"))
    return 0


def _data_check(args) -> int:
    from miar.data.check import detect_and_load, summarize
    splits = detect_and_load(Path(args.path))
    print(f"{args.path}: OK")
    print(summarize(splits))
    return 0


def _data_convert(args) -> int:
    from miar.data.convert import convert_pickle, read_manifest
    out = convert_pickle(Path(args.pickle), Path(args.dir))
    sizes = " | ".join(f"{k}: {v['n']}" for k, v in read_manifest(out)["splits"].items())
    print(f"{args.pickle} -> {out} ({sizes}); use it as data.path")
    return 0


def _sweep(args) -> int:
    from miar.study.executor import run_sweep
    return run_sweep(args.name, results=check_results(args.results), workers=args.workers, dry_run=args.dry_run,
                     redo_changed=args.redo_changed, fresh_kernels=args.fresh_kernels, overrides=tuple(args.set),
                     stop_after=args.stop_after, **_cluster_args(args))


def _cluster_args(args) -> dict:
    """The Dask options, checked before anything is created (miar.study.arguments)."""
    from miar.study.arguments import check_cluster
    check_cluster(args.workers, args.scheduler, args.scheduler_file, args.gpus_per_run)
    return {"scheduler": args.scheduler, "scheduler_file": args.scheduler_file, "gpus_per_run": args.gpus_per_run}


def _add_cluster(p) -> None:
    """The Dask options of sweep, align and tune (miar.study.engine)."""
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes of the LocalCluster started here (one thread each; threads split)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="run on an existing Dask cluster instead (dask scheduler / dask worker, dask-jobqueue)")
    p.add_argument("--scheduler-file", default=None, metavar="FILE", help="the existing cluster's scheduler file")
    p.add_argument("--gpus-per-run", type=int, default=0, metavar="K",
                   help="each run takes K of a worker's GPU resources (dask worker --resources GPU=N)")


def _align(args) -> int:
    from miar.study.align import run_alignment
    return run_alignment(args.experiment, results=check_results(args.results), split=args.split,
                         max_points=args.max_points, workers=args.workers, **_cluster_args(args))


def _tune(args) -> int:
    from miar.study.arguments import check_tune
    from miar.study.tune import run_tune
    from miar.study.tune_report import report
    results = check_results("results/tune" if args.results is None else args.results)
    check_tune(args.trials, args.seeds, args.batch, args.workers, args.confirm_seeds)
    if args.report:
        return report(args.experiment, results=results, storage=args.storage, confirm_seeds=args.confirm_seeds)
    cluster = {"workers": args.workers, "batch": args.batch, **_cluster_args(args)}
    return run_tune(args.experiment, space=args.space, trials=args.trials, seeds=tuple(args.seeds),
                    results=results, storage=args.storage, sampler=args.sampler, sampler_seed=args.sampler_seed,
                    enqueue=args.enqueue, cluster=cluster, overrides=tuple(args.set))


def _rescore(args) -> int:
    from miar.study.rescore import report, run
    if args.report:
        for row in report(args.results, args.study, args.seeds):
            print(f"rescore {row['study']}: trial t{row['chosen_trial']:04d} chosen over {row['seeds']} seeds")
        return 0
    cluster = {"workers": args.workers, **_cluster_args(args)}
    return run(args.study, args.seeds, args.results, cluster, stop_after=args.stop_after)


def _add_rescore(sub) -> None:
    r = sub.add_parser("rescore", help="run tuning trials again with more seeds and choose by the mean over all")
    r.add_argument("study", nargs="+", help="tuning studies under --results (e.g. mosi_std_miar)")
    r.add_argument("--seeds", type=int, nargs="+", required=True,
                   help="the extra seeds (e.g. 3 4); with --report: every seed to average (e.g. 1 2 3 4)")
    r.add_argument("--results", default="results/tune", help="the tuning results (default: results/tune)")
    r.add_argument("--report", action="store_true", help="only choose and write results/tune/rescored/")
    r.add_argument("--stop-after", type=float, default=None, metavar="MINUTES",
                   help="start no run after MINUTES (the same command resumes)")
    _add_cluster(r)
    r.set_defaults(func=_rescore)


def _add_tune(sub) -> None:
    t = sub.add_parser("tune", help="equal-budget hyperparameter search (Optuna), trials run like sweep runs")
    t.add_argument("experiment", help="experiment name (see miar list) or a config YAML")
    t.add_argument("--space", default=None, help="search space YAML (default: miar/experiments/spaces/<name>.yaml)")
    t.add_argument("--trials", type=int, default=20, help="trials to finish (the budget; default 20)")
    t.add_argument("--seeds", type=int, nargs="+", default=[1111], help="seeds per trial (default: 1111)")
    t.add_argument("--results", default=None, help="where trials and the study go (default: results/tune)")
    t.add_argument("--storage", default=None,
                   help="Optuna storage: an RDB URL or journal:FILE (default: sqlite DIR/<experiment>.db)")
    t.add_argument("--sampler", default="tpe", choices=["tpe", "random"], help="TPE (default) or random search")
    t.add_argument("--sampler-seed", type=int, default=0, help="the sampler's seed (default 0)")
    t.add_argument("--batch", type=int, default=None, help="trials run together (default: --workers)")
    t.add_argument("--enqueue", default=None, metavar="FILE", help="known configurations to try first (YAML)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every trial run")
    t.add_argument("--report", action="store_true",
                   help="print the best trials and write DIR/<experiment>-confirm.yaml (a sweep), run nothing")
    t.add_argument("--confirm-seeds", type=int, default=5, help="seeds of the confirming sweep (default 5)")
    _add_cluster(t)
    t.set_defaults(func=_tune)


def _collect(args) -> int:
    from miar.study import freshness
    from miar.study.collect import collect, find_runs
    results = check_results(args.results)
    digest = freshness.inputs_digest(results)
    if not args.force and freshness.up_to_date(results):
        print(f"{Path(results) / 'tables'}: up to date (no record, notebook or miar source changed since the "
              f"last collect; --force recomputes)")
        return 0
    summary = collect(results)
    _write_verdicts(results)
    for p in find_runs(Path(args.results))[1]:
        print(f"warning: {p}: incomplete run record, left out", file=sys.stderr)
    for name, e in summary["experiments"].items():
        print(f"{name}: {e['n_seeds']} seed(s)")
    freshness.mark(args.results, digest)  # the inputs as they were when this collect read them
    print(f"wrote {Path(args.results) / 'tables'}/runs.csv, summary.csv, comparisons.csv, verdicts.csv and "
          f"{Path(args.results)}/summary.json")
    return 0


def _write_verdicts(results) -> None:
    """tables/verdicts.csv: the claims' verdicts from the comparisons just written (miar.report.verdicts)."""
    from miar.atomic import csv_text, write_together
    from miar.report.verdicts import VERDICTS_CSV, verdict_records

    write_together({Path(results) / "tables" / VERDICTS_CSV: csv_text(verdict_records(results))})


def _list(args) -> int:
    for name in list_experiments():
        print(f"experiment  {name:<28} {_summary(experiment_path(name))}")
    for name in list_sweeps():
        print(f"sweep       {name:<28} {_summary(sweep_path(name))}")
    return 0


def _summary(path: Path) -> str:
    """A YAML file's first comment line (its one-line description), else its ``description`` key."""
    lines = path.read_text().splitlines()
    first = next((ln.lstrip("# ").strip() for ln in lines if ln.startswith("#")), "")
    return first or next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("description:")), "")


def _add_train(sub) -> None:
    t = sub.add_parser("train", help="train one run and write its run record")
    t.add_argument("experiment", help="experiment name (see miar list) or a config.yaml")
    t.add_argument("--seed", type=int, default=None, help="the run's seed (default: the config's, 1111)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. --set model.d_model=32 (repeatable)")
    t.add_argument("--run-dir", default=None, help="where the run record goes (default: runs/<name>-s<seed>)")
    t.add_argument("--resume", action="store_true",
                   help="continue from the run dir's per-epoch checkpoint (same final metrics)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace a complete run record in the run dir (refused without it)")
    t.set_defaults(func=_train)


def _add_data(sub) -> None:
    f = sub.add_parser("features", help="compute and cache offline text-encoder features for MOSI")
    f.add_argument("--encoder", action="append", required=True, choices=["minilm", "mpnet", "static"],
                   help="the text encoder (repeatable)")
    f.add_argument("--data", default=None, help="data root (default: $MIAR_DATA or ./data)")
    f.add_argument("--cache", default=None,
                   help="cache directory (default: $MIAR_CACHE, else $XDG_CACHE_HOME/miar, else ~/.cache/miar)")
    f.add_argument("--force", action="store_true",
                   help="recompute even when the cache holds this encoder's features of the same transcripts")
    f.set_defaults(func=_features)
    d = sub.add_parser("data", help="data utilities")
    dsub = d.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser("check", help="validate an MMSA/MulT pickle or the released MOSI directory")
    c.add_argument("path", help="an MMSA or MulT pickle, or the CMU-MOSI directory")
    c.set_defaults(func=_data_check)
    v = dsub.add_parser("convert", help="convert an MMSA/MulT pickle once into memory-mapped arrays + a manifest")
    v.add_argument("pickle", help="an MMSA (aligned_50.pkl, unaligned_50.pkl) or MulT pickle")
    v.add_argument("dir", help="the new folder (must not exist); then use it as data.path")
    v.set_defaults(func=_data_convert)


def _add_study(sub) -> None:
    s = sub.add_parser("sweep", help="execute a sweep's notebook runs with papermill (skips complete runs)")
    s.add_argument("name", help="sweep name (see miar list) or a sweep YAML")
    s.add_argument("--results", default="results", help="results directory (default: results)")
    _add_cluster(s)
    s.add_argument("--dry-run", action="store_true", help="list the runs and their state, run nothing")
    s.add_argument("--redo-changed", action="store_true",
                   help="redo complete runs whose config differs (never done by default)")
    s.add_argument("--fresh-kernels", action="store_true",
                   help="a new Jupyter kernel per run (default: one per worker, reset between runs)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override for every run of the sweep, e.g. --set data.path=/data/unaligned_50.pkl "
                        "(repeatable; recorded in each run's parameters)")
    s.add_argument("--stop-after", type=float, default=None, metavar="MINUTES",
                   help="start no run after MINUTES; runs under way finish and are recorded, exit 3 if some never "
                        "started (the same command resumes: for sweeps longer than a session)")
    s.set_defaults(func=_sweep)
    a = sub.add_parser("align", help="alignment analysis (t-SNE, modality gap) of runs that kept model.pt")
    a.add_argument("experiment", nargs="*", help="experiments under DIR/runs (default: all with model.pt)")
    a.add_argument("--results", default="results", help="results directory (default: results)")
    a.add_argument("--split", default="test", choices=["train", "valid", "test"],
                   help="the split whose tokens are analysed (default: test)")
    a.add_argument("--max-points", type=int, default=600, help="points per t-SNE figure (default: 600)")
    _add_cluster(a)
    a.set_defaults(func=_align)
    k = sub.add_parser("collect", help="tables and summary.json from the run records")
    k.add_argument("--results", default="results", help="results directory (default: results)")
    k.add_argument("--force", action="store_true",
                   help="recompute even when no record, notebook or miar source changed since the last collect")
    k.set_defaults(func=_collect)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="miar", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"miar {__version__}", help="print the version")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("bench", help="throughput, latency, FLOPs and scaling benchmark (miar bench --help)",
                   add_help=False)
    sub.add_parser("list", help="the experiments and sweeps, one line each").set_defaults(func=_list)
    _add_train(sub)
    _add_data(sub)
    _add_study(sub)
    _add_tune(sub)
    _add_rescore(sub)
    return p


def _one_line(message: str) -> str:
    """A message as one line (a YAML or driver error can carry several)."""
    return " ".join(ln.strip() for ln in message.splitlines() if ln.strip()) or "(no message)"


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        install_sigint_watchdog()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # the benchmark owns its arguments (miar bench --help)
        from miar.bench.cli import main as bench_main
        return bench_main(argv[1:])
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:  # every user-error type of the package (miar.errors)
        print(f"error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except OSError as e:  # unreadable, read-only, full disk: one line naming the file
        print(f"error: {os_error_line(e)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory (reduce the sizes in the config)", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (interrupt.Terminated): the same orderly stop
        terminated = isinstance(e, Terminated)
        print("terminated" if terminated else "interrupted", file=sys.stderr)
        return 143 if terminated else 130


if __name__ == "__main__":
    sys.exit(main())
