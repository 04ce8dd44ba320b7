"""miar.report on a tiny fake results directory written here through the real pipeline (run records ->
``miar collect``): the book's tables equal ``summarize_seeds`` of the per-seed inputs, verdicts follow the
comparisons collect wrote, the README block is replaced idempotently and missing results read "not yet run".

``write_fake_results`` is also used by ``test_book.py`` to build the book with every chapter populated.
"""

import json
import math
from dataclasses import replace
from pathlib import Path

import nbformat
import numpy as np
import pytest

from miar import config as C
from miar import report as R
from miar.metrics import METRICS, bootstrap_ci, compute_all, summarize_seeds
from miar.records import write_record
from miar.study.collect import collect

SEEDS = (1111, 1112, 1113)
TWO = {R.MAIN: 0.5, R.tuned("text_only"): 0.9}  # experiment -> prediction noise (MIAR clearly better)


def _labels(n: int = 80) -> np.ndarray:
    y = np.round(np.random.default_rng(0).uniform(-3, 3, n) * 3) / 3  # (n,), a few exact zeros
    y[:3] = 0.0
    return y


def write_fake_results(root: Path, experiments: dict[str, float] = TWO, seeds=SEEDS, extras: bool = False) -> dict:
    """Run records for each experiment and seed (predictions = labels + Gaussian noise of the given size),
    then ``collect``; with ``extras`` also alignment.json, gate weights, a benchmark file and notebooks.
    Returns {experiment: {metric: [per-seed test values]}}."""
    root = Path(root)
    y = _labels()
    values: dict = {}
    for i, (exp, noise) in enumerate(experiments.items()):
        for seed in seeds:
            rng = np.random.default_rng(seed * 100 + i)
            pred = y + rng.normal(0.0, noise, y.size)  # (n,)
            test = compute_all(pred, y)
            metrics = {"valid": test, "test": test, "best_epoch": 3, "epochs_run": 5, "criterion": "valid_mae",
                       "test_ci95": {k: list(v) for k, v in bootstrap_ci(pred, y, n_boot=20).items()},
                       "n": {"train": 200, "valid": 40, "test": int(y.size)}}
            if exp.endswith((".gate", "+gate")) or exp == R.SYNTH:
                metrics["gate_mean_test"] = {"text": 0.5, "audio": 0.2, "vision": 0.1, "fused": 0.2}
            cfg = replace(C.load("smoke", seed=seed), name=exp)
            run = root / "runs" / exp / f"s{seed}"
            write_record(run, config_yaml=C.dump(cfg), metrics=metrics,
                         history=[{"epoch": e, "train_loss": 1.0 / e, "valid_mae": test["mae"] + 0.1 / e}
                                  for e in range(1, 6)],
                         predictions=[{"id": f"v{j // 5}_{j % 5 + 1}", "pred": float(p), "label": float(t)}
                                      for j, (p, t) in enumerate(zip(pred, y))],
                         env={"commit": "abc123", "dirty": False, "python": "3.11", "torch": "2.13.0",
                              "numpy": "2", "platform": "Linux", "device": "cpu", "device_name": "fake CPU",
                              "cpu_count": 2, "torch_threads": 1, "wall_time_s": 60.0 + seed % 10})
            for m in METRICS:
                values.setdefault(exp, {}).setdefault(m, []).append(test[m])
            if extras and exp in (R.MAIN, R.variant("no_contrastive"), R.SYNTH, f"{R.SYNTH}+no_contrastive"):
                gap = 0.9 if exp.endswith("no_contrastive") else 0.3
                block = lambda g: {"modality_gap": g + 0.01 * (seed % 10), "silhouette_modality": g / 2,  # noqa
                                   "silhouette_polarity": {"text": 0.1, "mean": 0.1}}
                (run / "alignment.json").write_text(json.dumps({"run_dir": str(run), "split": "test",
                                                                "tokens": block(gap), "features": block(1.0)}))
    collect(root)
    if extras:
        (root / "bench").mkdir(exist_ok=True)
        (root / "bench" / "cpu.json").write_text(json.dumps(
            {"device": "fake CPU", "results": [{"model": "miar", "ms_per_step": 12.5},
                                               {"model": "mult", "ms_per_step": 20.0}]}))
        for exp in experiments:
            nb_dir = root / "notebooks" / exp
            nb_dir.mkdir(parents=True, exist_ok=True)
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("fake")])
            nb.metadata["papermill"] = {"parameters": {  # as miar sweep leaves them: they resolve to the record
                "experiment": "smoke", "seed": seeds[0], "overrides": [f"name={exp}"],
                "run_dir": str(root / "runs" / exp / f"s{seeds[0]}")}}
            nbformat.write(nb, nb_dir / f"s{seeds[0]}.ipynb")
    return values


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    return root, write_fake_results(root)


def test_summary_frame_equals_summarize_seeds(fake):
    root, values = fake
    frame = R.summary_frame(R.load_summary(root))
    assert set(frame["experiment"]) == set(TWO)
    for exp, per_metric in values.items():
        for m, vals in per_metric.items():
            row = frame[(frame["experiment"] == exp) & (frame["metric"] == m)].iloc[0]
            s = summarize_seeds(vals)
            assert row["mean"] == pytest.approx(s["mean"], abs=1e-12)
            assert row["std"] == pytest.approx(s["std"], abs=1e-12)
            assert [row["ci_low"], row["ci_high"]] == pytest.approx(s["ci95"], abs=1e-12)
            assert row["n_seeds"] == len(SEEDS)


def test_results_table_formats_mean_std_and_ci(fake):
    root, values = fake
    summary = R.load_summary(root)
    table = R.results_table(summary, {R.MAIN: "MIAR", R.tuned("mult"): "MulT"})
    s = summarize_seeds(values[R.MAIN]["mae"])
    assert table.loc[0, "MAE"] == f"{s['mean']:.3f} ± {s['std']:.3f}"
    acc = summarize_seeds(values[R.MAIN]["non0_acc2"])
    assert table.loc[0, "Non0 Acc-2 (%)"] == f"{100 * acc['mean']:.2f} ± {100 * acc['std']:.2f}"
    assert table.loc[0, "Seeds"] == len(SEEDS)
    assert table.loc[1, "MAE"] == "-" and table.loc[1, "Seeds"] == R.NOT_YET_RUN
    ci = R.results_table(summary, {R.MAIN: "MIAR"}, ci=True)
    assert ci.loc[0, "MAE"] == f"[{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]"


def test_seed_values_and_compare(fake):
    root, values = fake
    runs = R.load_runs(root)
    a, b = values[R.MAIN]["mae"], values[R.tuned("text_only")]["mae"]
    assert sorted(R.seed_values(runs, R.MAIN, "mae")) == pytest.approx(sorted(a))
    c = R.compare(runs, R.MAIN, R.tuned("text_only"), "mae")
    assert c.gain == pytest.approx(np.mean(b) - np.mean(a))  # lower MAE is a gain
    assert c.lo < c.gain < c.hi and c.status == "better"
    assert R.compare(runs, R.tuned("text_only"), R.MAIN, "mae").status == "worse"
    assert R.compare(runs, R.MAIN, R.tuned("mult")) is None


def test_welch_matches_hand_computation():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0, 8.0])
    diff, lo, hi = R.welch(a, b)
    va, vb = 1.0 / 3, (20.0 / 3) / 4  # sample variances over n
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    from scipy.stats import t
    half = t.ppf(0.975, df) * math.sqrt(va + vb)
    assert diff == -3.0 and (lo, hi) == pytest.approx((-3 - half, -3 + half))
    assert math.isnan(R.welch(a[:1], b)[1])


def test_verdicts_and_title(fake):
    root, _ = fake
    rows = {r["claim"]: r for r in R.verdicts(root)}
    assert rows["sota"]["verdict"] == R.NOT_YET_RUN  # only one of six baselines has run
    assert "**better**" in rows["sota"]["detail"] and "not run" in rows["sota"]["detail"]
    assert rows["contrastive"]["verdict"] == R.NOT_YET_RUN
    assert rows["mosei"]["verdict"] == "not testable"
    assert R.title_tag(list(rows.values())) is None
    decided = [{**r, "verdict": "reproduced"} for r in rows.values()]
    assert R.title_tag(decided) == "[Re]"
    for refuted in ("contradicted", "equivalent"):
        decided[0]["verdict"] = refuted
        assert R.title_tag(decided) == "[¬Re]"
    decided[0]["verdict"] = "inconclusive"  # no main claim refuted, one undecided: no tag
    assert R.title_tag(decided) is None


def test_claim_verdict_rule():
    assert R.combine(["better", "better"]) == "reproduced"
    assert R.combine(["better", "worse"]) == "contradicted"
    assert R.combine(["better", "equivalent", "inconclusive"]) == "equivalent"
    assert R.combine(["better", "inconclusive"]) == "inconclusive"
    assert R.combine(["better", "not run"]) == R.NOT_YET_RUN
    assert R.combine([]) == R.NOT_YET_RUN


def test_collect_writes_the_comparisons(fake):
    root, _ = fake
    comps = R.load_comparisons(root)
    summary = json.loads((root / "summary.json").read_text())
    assert len(summary["comparisons"]) == len(comps) > 0
    row = R.rows_of(comps, "primary_std", "mae", [(R.MAIN, R.tuned("text_only"))]).iloc[0]
    assert row["n_seeds_a"] == row["n_seeds_b"] == len(SEEDS) and row["n_videos"] == 16
    assert row["diff"] < 0 and row["ci_high_h"] < 0 and row["verdict"] == "better"
    assert row["ci_low_h"] <= row["ci_low"] + 0.02  # the hierarchical interval holds the video one's spread
    missing = R.rows_of(comps, "primary_std", "mae", [(R.MAIN, R.tuned("mult"))]).iloc[0]
    assert missing["verdict"] == "not run" and R.tuned("mult") in missing["note"]
    assert "Detectable (80% power)" in R.power_table(comps, ["primary_std"]).columns


def test_anchor_table_keeps_published_and_ours_apart(tmp_path):
    bc = R.tuned("miar", "bclf")  # the published bc-split numbers sit beside our bc-split runs
    root, values = tmp_path, write_fake_results(tmp_path, {bc: 0.5})
    values = {R.MAIN: values[bc]}
    table = R.anchor_table(R.load_summary(root), root)
    assert {"Published (runs)", "Source", "Protocol", "Ours: mean ± std (n)", "Ours: 95% CI"} <= set(table.columns)
    mmmu = table[(table["System (published)"].str.startswith("MMMU-BA")) & (table["Metric"] == "Has0 Acc-2 (%)")]
    s = summarize_seeds(values[R.MAIN]["has0_acc2"])
    assert mmmu.iloc[0]["Published (runs)"] == "82.31 (mean of 5)"
    assert mmmu.iloc[0]["Ours: mean ± std (n)"] == f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f} (n=3)"
    majority = table[table["System (published)"].str.startswith("Majority class")].iloc[0]
    share = np.mean(_labels() >= 0)
    assert majority["Ours: mean ± std (n)"].startswith(f"{100 * share:.2f} ± 0.00")
    bclstm = table[table["Ours: experiment"] == f"`{R.tuned('bclstm', 'bclf')}`"].iloc[0]
    assert bclstm["Ours − published"] == R.NOT_YET_RUN
    assert mmmu.iloc[0]["Ours − published"].startswith(f"{100 * s['mean'] - 82.31:+.2f} (")


def test_readme_block_replacement_is_idempotent(fake, tmp_path):
    root, values = fake
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{R.LEAD_START}\n{R.LEAD_END}\n\nintro\n\n{R.START}\nold text\n{R.END}\n\n## after\n")
    assert R.update_readme(readme, root) is True
    text = readme.read_text()
    assert "old text" not in text and text.startswith("# x\n\n") and text.endswith("\n\n## after\n")
    assert "\n\nintro\n\n" in text
    s = summarize_seeds(values[R.MAIN]["mae"])
    assert f"{s['mean']:.3f} ± {s['std']:.3f}" in text
    assert "82.31 (mean of 5)" in text  # the published anchors, in their own columns
    assert R.update_readme(readme, root) is False
    assert readme.read_text() == text


def test_readme_and_tables_without_results(tmp_path):
    empty = tmp_path / "results"
    empty.mkdir()
    assert "Not yet run" in R.readme_table(empty)
    assert R.load_summary(empty) == {} and R.load_runs(empty).empty
    assert set(R.results_table({}, R.MAIN_TABLE)["Seeds"]) == {R.NOT_YET_RUN}
    assert all(r["verdict"] in (R.NOT_YET_RUN, "not testable") for r in R.verdicts(empty))
    assert R.notebooks(empty) == [] and R.bench_files(empty) == [] and R.env_frame(empty).empty
    assert R.alignment_frame(empty).empty and R.gate_table(empty, R.MAIN).empty
    assert "Not yet run" in R.not_yet_run("The main table") and R.NOT_YET_RUN in R.not_yet_run("x")
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="results:start"):
        R.update_readme(readme, empty)


def test_extras_alignment_gate_bench_notebooks_env(tmp_path):
    exps = {R.MAIN: 0.5, R.variant("no_contrastive"): 0.6, R.variant("gate"): 0.5}
    write_fake_results(tmp_path, exps, extras=True)
    align = R.alignment_frame(tmp_path)
    assert len(align) == 2 * 2 * len(SEEDS)  # two experiments x tokens/features x seeds
    rows = {r["claim"]: r for r in R.verdicts(tmp_path)}
    assert rows["alignment"]["verdict"] == R.NOT_YET_RUN  # MOSI better, the synthetic pair not run yet
    assert "better" in rows["alignment"]["detail"]
    strengths = f"{R.SYNTH_STRENGTHS}+gate"
    write_fake_results(tmp_path, {**exps, R.SYNTH: 0.5, f"{R.SYNTH}+no_contrastive": 0.5, strengths: 0.5},
                       extras=True)
    rows = {r["claim"]: r for r in R.verdicts(tmp_path)}
    assert rows["alignment"]["verdict"] == "reproduced"  # the fake gap is 0.3 vs 0.9 in both
    truth = R.gate_vs_truth(tmp_path, strengths)
    strength = C.load("smoke").data.synthetic.strength
    assert truth["Generated strength"].tolist() == [*strength, "-"]
    assert truth["Mean gate weight (test)"].tolist() == [0.5, 0.2, 0.1, 0.2]
    gate = R.gate_table(tmp_path, R.variant("gate"))
    assert list(gate["run"]) == ["s1111", "s1112", "s1113", "mean"] and gate["text"].iloc[-1] == 0.5
    bench = R.bench_tables(R.bench_files(tmp_path)[0])
    assert bench["results"]["ms_per_step"].tolist() == [12.5, 20.0]
    assert bench["summary"].values.tolist() == [["device", "fake CPU"]]
    links = R.notebook_links(tmp_path, tmp_path / "book")
    assert links.count("<a href=") == 6 and links.count("/notebooks/") == 6 and "{download}" not in links
    assert "(incomplete)" not in links and links.count("\n") == 5  # one line per experiment
    env = R.env_frame(tmp_path)
    table = R.compute_table(env)
    assert table.iloc[-1]["Runs"] == 18  # six experiments x three seeds
    assert table.iloc[-1]["Total wall time (min)"] == round(env["wall_time_s"].sum() / 60, 1)
    assert R.staleness(tmp_path) == []
    import shutil
    shutil.rmtree(tmp_path / "runs" / R.MAIN / "s1111")
    assert R.staleness(tmp_path) == [f"runs.csv lists `{R.MAIN}/s1111` but its run record is missing"]



def test_projected_gap_beside_the_token_gap_and_old_alignment_files_still_collect(tmp_path):
    import pandas as pd

    from miar.report.alignment import loss_site_sentence, projected_gap_table

    exps = {R.MAIN: 0.5, R.variant("no_contrastive"): 0.6}
    write_fake_results(tmp_path, exps, extras=True)  # alignment.json as before: tokens and features only
    before = json.loads((tmp_path / "summary.json").read_text())["experiments"]
    assert "align_projected" not in (tmp_path / "tables" / "runs.csv").read_text()
    assert projected_gap_table(R.alignment_frame(tmp_path)).empty
    for seed in SEEDS:  # MIAR's runs analysed again, now with the projected block; the other experiment's stay old
        a = tmp_path / "runs" / R.MAIN / f"s{seed}" / "alignment.json"
        data = json.loads(a.read_text())
        data["projected"] = {**data["tokens"], "modality_gap": 0.1 * (seed - 1110), "acts_on": "tokens",
                             "loss_pairs": ["text|audio"]}
        a.write_text(json.dumps(data))
    after = collect(tmp_path)["experiments"]
    assert after[R.MAIN]["extra"]["align_projected_modality_gap"]["mean"] == pytest.approx(0.2)
    assert after[R.MAIN]["extra"]["align_projected_modality_gap"]["n"] == len(SEEDS)
    assert not any("projected" in k for k in after[R.variant("no_contrastive")]["extra"])  # absent, not an error
    for exp in exps:  # the existing numbers are untouched
        old = {k: v for k, v in before[exp]["extra"].items() if k.startswith("align_")}
        assert old and all(after[exp]["extra"][k] == v for k, v in old.items())
    runs = pd.read_csv(tmp_path / "tables" / "runs.csv")
    assert runs.loc[runs["experiment"] != R.MAIN, "align_projected_modality_gap"].isna().all()
    assert runs.loc[runs["experiment"] == R.MAIN, "align_projected_modality_gap"].tolist() == pytest.approx([.1, .2, .3])
    align = R.alignment_frame(tmp_path)
    assert len(align) == 2 * 2 * len(SEEDS) + len(SEEDS)  # tokens/features everywhere, projected for MIAR
    assert set(align.loc[align["kind"] == "projected", "acts_on"]) == {"tokens"}
    table = projected_gap_table(align)
    tok = align.loc[(align["experiment"] == R.MAIN) & (align["kind"] == "tokens"), "modality_gap"]
    assert table.to_dict("records") == [{
        "Experiment": f"`{R.MAIN}`", "Loss acts on": "tokens", "Contrastive weight": "0.1", "Runs": len(SEEDS),
        "Token gap": f"{tok.mean():.3f} ± {tok.std(ddof=0):.3f}",
        "Projected gap": f"{0.2:.3f} ± {np.std([0.1, 0.2, 0.3]):.3f}"}]
    sentence = loss_site_sentence(align)
    assert "the feature tokens after the interaction (`model.contrast_on=tokens`)" in sentence


def test_every_inferred_config_key_is_in_the_specification_table():
    keys = R.inferred_keys()
    assert "model.token_scheme" in keys and "loss.weight" in keys
    listed = {key for _, key, _ in R.SPEC}
    assert set(keys) <= listed
    _, cfg = R.main_config()
    table = R.spec_table(cfg, {})
    assert len(table) == len(R.SPEC)
    row = table[table["Config key"].str.startswith("`model.token_scheme`")].iloc[0]
    assert row["Our default"] == f"`{cfg.model.token_scheme}`" and "`directed`" in row["Alternatives"]
    assert "not in the ablations sweep" in row["Ablation"]  # no overrides given: said so, not "planned"
    lr = table[table["Config key"].str.startswith("`train.lr`")]
    if not lr.empty:  # a float config value shows to 3 significant digits
        assert lr.iloc[0]["Our default"] == f"`{R.shown_value(cfg.train.lr)}`"
    assert R.shown_value(0.0004405724506734873) == "0.000441" and R.shown_value(64) == "64"


def test_md_table_escapes_pipes_and_rounds_floats():
    import pandas as pd
    text = R.md_table(pd.DataFrame({"a": ["x|y"], "b": [1], "c": [0.123456], "d": [12345.6]}))
    assert text.splitlines() == ["| a | b | c | d |", "|---|---|---|---|", "| x\\|y | 1 | 0.1235 | 12,346 |"]


def test_bench_tables_split_nested_records(tmp_path):
    report = {"machine": {"cores": 2, "load": [1.0, 2.0]}, "models": [{"model": "miar", "ms": 1.5}],
              "mmsa": {"available": True, "shapes": [{"preset": "mosi", "speedup": 1.7}]}, "epoch_s": 12.0}
    (tmp_path / "b.json").write_text(__import__("json").dumps(report))
    tables = R.bench_tables(tmp_path / "b.json")
    assert list(tables) == ["summary", "models", "mmsa.shapes"]
    assert tables["summary"]["Field"].tolist() == ["machine.cores", "machine.load", "mmsa.available", "epoch_s"]
    assert tables["mmsa.shapes"].iloc[0]["speedup"] == 1.7


def test_fmt_handles_missing_values():
    assert R.fmt(None, "mae") == "-" and R.fmt(float("nan"), "mae") == "-"
    assert R.fmt(0.81234, "has0_acc2") == "81.23" and R.fmt(0.81234, "mae") == "0.812"
    assert R.fmt_stats(None, "mae") == R.NOT_YET_RUN


def _fake_tuning(root: Path, study: str, values: list[float]) -> None:
    """A tuning study as make tune leaves it: trial records (validation only) and the chosen trial's file."""
    import yaml
    for t, v in enumerate(values):
        for seed in (1, 2):
            d = root / "tune" / "runs" / f"{study}+t{t:04d}" / f"s{seed}"
            d.mkdir(parents=True)
            (d / "metrics.json").write_text(json.dumps({"valid": {"mae": v + 0.01 * seed}, "test": None}))
            (d / "env.json").write_text(json.dumps({"commit": "f00ba12", "dirty": False}))
    best = min(range(len(values)), key=lambda t: values[t])
    (root / "tune" / f"{study}-best.yaml").write_text(yaml.safe_dump(
        {"study": study, "trial": best, "valid_mae": values[best] + 0.015, "seeds": [1, 2],
         "overrides": ["model.d_model=64", "train.lr=0.00044"]}))


def test_tuning_report_reads_the_studies_and_chooses_on_validation_only(tmp_path):
    write_fake_results(tmp_path, {R.MAIN: 0.6, R.tuned("text_only"): 0.9, R.tuned("mult"): 0.5})
    _fake_tuning(tmp_path, R.TUNING["miar"], [0.80, 0.75, 0.78])
    budget = R.budget_table(tmp_path).set_index("Model")
    assert budget.loc["MIAR (ours)", "Trials"] == 3 and budget.loc["MIAR (ours)", "Chosen trial"] == "t0001"
    assert budget.loc["MIAR (ours)", "Validation MAE (chosen)"] == "0.765"
    assert budget.loc["Text only", "Trials"] == R.NOT_YET_RUN
    rescored = tmp_path / "tune" / "runs" / f"{R.TUNING['miar']}+t0000" / "s3"  # miar rescore's extra seed
    rescored.mkdir(parents=True)
    (rescored / "metrics.json").write_text(json.dumps({"valid": {"mae": 5.0}, "test": None}))
    trials = R.trials(tmp_path, R.TUNING["miar"])  # the search's own scores: its seeds only
    assert trials["valid"].tolist() == pytest.approx([0.815, 0.765, 0.795]) and set(trials["seeds"]) == {2}
    chosen = R.chosen_table(tmp_path)
    assert chosen["Hyperparameter"].tolist() == ["`model.d_model`", "`train.lr`"]
    assert chosen["Chosen"].tolist() == ["64", "0.00044"]
    assert R.search_figure(tmp_path) is not None
    assert "tuning studies (results/tune)" in R.commits_by_table(tmp_path)["Table"].tolist()
    import sqlite3
    with sqlite3.connect(tmp_path / "tune" / f"{R.TUNING['miar']}.db") as con:  # Optuna's trials table, in part
        con.execute("CREATE TABLE trials (datetime_start TEXT, datetime_complete TEXT)")
        con.executemany("INSERT INTO trials VALUES (?, ?)", [("2026-12-01 10:00:00", "2026-12-01 10:30:00"),
                                                            ("2026-12-01 10:31:00", "2026-12-01 11:00:00")])
    time = R.study_time_table(tmp_path).set_index("Part")
    assert time.loc[f"tuning `{R.TUNING['miar']}`", "Wall (min)"] == 60.0
    assert time.loc[f"tuning `{R.TUNING['miar']}`", "Runs"] == 6 and time.loc["total", "Wall (min)"] == 60.0
    summary = R.load_summary(tmp_path)
    assert R.ranked_by_validation(summary, R.BASELINES) == [R.tuned("mult"), R.tuned("text_only")]
    assert R.best_by_validation(summary, R.BASELINES) == R.tuned("mult")


def test_variant_names_and_parts():
    assert R.variant("no_norm") == "mosi_std_miar+tuned.no_norm" and R.variant("x", "synth_gap") == "synth_gap+x"
    assert R.parts(R.variant("no_norm")) == (R.MAIN, "no_norm")
    assert R.parts(R.tuned("mult")) == (R.tuned("mult"), "") and R.parts("synth_gap+no_norm") == ("synth_gap", "no_norm")
    assert R.display_name(R.variant("no_contrastive")) == "MIAR, no contrastive term"
    assert R.display_name(R.tuned("mult", "bclf")) == "MulT"


def test_performance_targets_and_readme_speed(tmp_path):
    assert R.readme_speed(tmp_path) is None
    bench = {"machine": {"cpu_model": "fake CPU", "cores": 2, "torch_threads": 2, "torch": "2.13.0"},
             "mult_train_speedup_vs_mmsa": 1.8, "miar_mosei_epoch_s": 41.0,
             "mmsa": {"available": True, "mmsa_version": "2.2.1", "shapes": [
                 {"preset": "mosi", "aligned": True, "batch": 32, "ours_samples_per_s": 90.0,
                  "mmsa_samples_per_s": 50.0, "speedup": 1.8}]},
             "epoch_scaling": [{"size": "mosi", "n_samples": 100, "epoch_s": 2.0, "peak_memory_mb": 10.0}]}
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "cpu.json").write_text(json.dumps(bench))
    t = R.targets_table(bench, None)
    assert list(t["Met"]) == ["yes", "no", "-"]
    (tmp_path / "sweeps").mkdir()
    from miar.report.study_time import STUDY_SWEEPS
    for name in STUDY_SWEEPS:  # the redesigned study's four sweeps, each run from scratch
        (tmp_path / "sweeps" / f"{name}-20260101T000000Z.json").write_text(json.dumps(
            {"sweep": f"/x/{name}.yaml", "started_utc": "2026", "wall_s": 300.0, "workers": 2, "runs_in_sweep": 49,
             "runs_executed": 49, "runs_failed": 0, "complete_from_scratch": True}))
    study = R.study_wall(tmp_path)
    assert study["wall_s"] == 300.0 * len(STUDY_SWEEPS) and study["runs_in_sweep"] == 49 * len(STUDY_SWEEPS)
    # the fine-tuned arm (a sweep spanning sessions) has not started: under the target so far, not met yet
    assert R.targets_table(bench, study)["Met"].iloc[-1] == "-" and study["tuning_s"] == 0  # no Optuna files here
    assert "`primary_ft` not started" in R.targets_table(bench, study)["Measure"].iloc[-1]
    over = R.targets_table(bench, {**study, "tuning_s": 4 * 3600.0})  # tuning counts toward the 4 h target
    assert over["Met"].iloc[-1] == "no" and "tuning included" in over["Target"].iloc[-1]
    line = R.readme_speed(tmp_path)
    assert "**1.80×**" in line and "41.0 s" in line and "25 min so far" in line and "fake CPU" in line
    assert R.mmsa_table(bench)["Speedup"].item() == "1.80×"
    import matplotlib
    matplotlib.use("Agg")
    assert R.speedup_figure(bench) is not None and R.scaling_figure(bench) is not None


def test_kernel_overhead_pairs_fresh_and_reused_sweeps(tmp_path):
    assert R.kernel_overhead(tmp_path).empty
    (tmp_path / "sweeps").mkdir()
    base = {"sweep": "/x/main.yaml", "workers": 2, "runs_in_sweep": 35, "runs_executed": 35, "runs_failed": 0,
            "complete_from_scratch": True, "cpu_model": "fake CPU"}
    for start, kernels, wall in (("20260101T000000Z", "fresh per run", 300.0),
                                 ("20260101T010000Z", "one per worker, reset between runs", 200.0)):
        (tmp_path / "sweeps" / f"main-{start}.json").write_text(json.dumps({**base, "kernels": kernels,
                                                                             "wall_s": wall}))
    (tmp_path / "sweeps" / "main-20250101T000000Z.json").write_text(json.dumps({**base, "wall_s": 999.0}))  # older
    t = R.kernel_overhead(tmp_path)
    assert list(t["Kernels"]) == ["fresh per run", "one per worker, reset between runs", "fresh / reused"]
    assert t["Wall (min)"].iloc[-1] == "1.50×" and t["Worker-s per run"].iloc[1] == round(200 * 2 / 35, 1)


def test_rerun_and_rerun_comparison_tables(tmp_path):
    assert R.rerun_table(tmp_path).empty and R.rerun_comparison(tmp_path) is None
    (tmp_path / "reruns").mkdir()
    (tmp_path / "reruns" / "verify.json").write_text(json.dumps({"runs": [
        {"run": "results/runs/a/s1", "same": True, "recorded_on": "X", "rerun_on": "X", "commit": "abc",
         "differences": {}},
        {"run": "results/runs/b/s1", "same": False, "recorded_on": "X", "rerun_on": "Y", "commit": "abc",
         "differences": {"mae": [0.1, 0.2]}}]}))
    t = R.rerun_table(tmp_path)
    assert list(t["Test metrics"]) == ["identical", "differ: mae"] and list(t["Run"]) == ["`a/s1`", "`b/s1`"]
    cmp = {"old": {"label": "A"}, "new": {"device_name": "B"}, "experiments": [
        {"experiment": "e", "n": 5, "old_mae": 0.8, "new_mae": 0.81, "old_has0_acc2": 0.7, "new_has0_acc2": 0.7}]}
    t = R.rerun_comparison_table(cmp)
    assert t["Δ MAE"].item() == 0.01 and "MAE (A)" in t and "MAE (B)" in t


def test_quiet_build_filters_only_the_noise():
    import logging

    from miar.report.sphinx import QuietConfigDumps

    def rec(level, msg):
        return logging.LogRecord("sphinx.x", level, __file__, 1, msg, None, None)

    f = QuietConfigDumps()
    assert not f.filter(rec(logging.INFO, "\x1b[01mmyst v%s:\x1b[39;49;00m %s"))
    assert not f.filter(rec(logging.INFO, "myst-nb v%s: %s"))
    assert f.filter(rec(logging.WARNING, "myst v%s: something is wrong"))
    assert f.filter(rec(logging.INFO, "reading sources..."))
    cfg = Path(__file__).resolve().parents[2] / "scripts" / "ipython_kernel_config.py"
    exec(compile(cfg.read_text(), str(cfg), "exec"), {})  # what every kernel of the venv runs at start
    logger = logging.getLogger("IPKernelApp")
    assert not all(flt.filter(rec(logging.WARNING, "Kernel is running over TCP without encryption. x"))
                   for flt in logger.filters)
    assert all(flt.filter(rec(logging.WARNING, "another warning")) for flt in logger.filters)


def test_rows_of_a_family_without_rows_keeps_the_columns(fake):
    root, _ = fake
    comps = R.load_comparisons(root)
    none = R.rows_of(comps, "no_such_family", "mae", [(R.MAIN, R.tuned("mult"))])
    assert none.empty and list(none.columns) == list(comps.columns)  # the forest and its labels read "a" and "b"


def _family_rows(family: str, table: dict, verdict: str, seeds: int) -> list[dict]:
    """One comparisons.csv row per baseline of ``table`` (MIAR first), all with ``verdict`` and ``seeds`` seeds."""
    from miar.report.evidence import COLUMNS

    names = list(table)
    return [{**dict.fromkeys(COLUMNS, 0.0), "family": family, "a": names[0], "b": b, "metric": "mae",
             "n_seeds_a": seeds, "n_seeds_b": seeds, "n_videos": 31, "diff": 0.01, "margin": 0.02, "mdd80": 0.05,
             "seeds_needed": math.inf, "videos_needed": 250, "verdict": verdict, "note": ""} for b in names[1:]]


@pytest.mark.parametrize("ft_seeds", [4, 10])
def test_the_exploratory_fine_tuned_arm_decides_nothing(tmp_path, ft_seeds):
    """The primary table's fine-tuned arm (families primary_*_ft) is exploratory (designs/all_cv.yaml): 'worse'
    rows in it change no verdict, whether it has some seeds or all of them."""
    import pandas as pd

    rows = (_family_rows("primary_std", R.MAIN_TABLE, "inconclusive", 10)
            + _family_rows("primary_std_ft", R.MAIN_FT_TABLE, "worse", ft_seeds))
    (tmp_path / "tables").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "tables" / "comparisons.csv", index=False)
    sota = {r["claim"]: r for r in R.verdicts(tmp_path)}["sota"]
    assert sota["verdict"] == "inconclusive"
    assert "fine-tuned" not in sota["detail"] and "primary_std_ft" not in sota["detail"]
    assert R.complete(R.rows_of(R.load_comparisons(tmp_path), "primary_std_ft")) == (ft_seeds == 10)


def test_findings_say_how_far_the_fine_tuned_arm_is(tmp_path):
    from miar.report.findings import findings

    ft = list(R.MAIN_FT_TABLE)
    write_fake_results(tmp_path, {R.MAIN: 0.5, R.tuned("text_only"): 0.9, ft[0]: 0.6, ft[1]: 0.8})
    line = next(f for f in findings(tmp_path) if "fine-tuned text arm" in f)
    assert f"part way: {2 * len(SEEDS)} of {10 * 14} runs, 0 to {len(SEEDS)} seeds per experiment" in line


def test_an_inconclusive_says_which_half_of_the_rule_fell_short():
    """Interval off 0 but p too large, or p small but the interval across 0: the rule needs both."""
    from miar.report.evidence import diff_text, verdict_text
    from miar.stats import decide
    row = {"metric": "mae", "diff": 0.037, "ci_low_h": 0.002, "ci_high_h": 0.071, "p_holm": 0.136}
    row["verdict"] = decide(row["diff"], row["ci_low_h"], row["ci_high_h"], row["p_holm"], 1.0, "mae")
    assert row["verdict"] == "inconclusive" and diff_text(row) == "+0.037 [+0.002, +0.071]"
    assert verdict_text(row) == ("**inconclusive** (the interval excludes 0, but the Holm-adjusted permutation p "
                                 "is 0.136; the rule needs both)")
    assert verdict_text({**row, "ci_low_h": -0.01, "verdict": "inconclusive"}) == "**inconclusive**"
    split = {**row, "ci_low_h": -0.01, "p_holm": 0.02}
    split["verdict"] = decide(0.037, -0.01, 0.071, 0.02, 1.0, "mae")
    assert verdict_text(split) == ("**inconclusive** (the Holm-adjusted permutation p is 0.020, but the interval "
                                   "includes 0; the rule needs both)")
    from miar.report.evidence import evidence_line
    line = evidence_line({**split, "b": "x", "a": "y", "mdd80": 0.05, "margin": 0.02})
    assert "**inconclusive** (the rule needs both the interval off 0 and p below the level);" in line
    assert "**inconclusive**;" in evidence_line({**split, "p_holm": 0.5, "b": "x", "a": "y", "mdd80": 0.05, "margin": 0.02})
    worse = {**row, "p_holm": 0.01}
    worse["verdict"] = decide(0.037, 0.002, 0.071, 0.01, 1.0, "mae")
    assert verdict_text(worse) == "**worse**"


def test_collect_writes_the_verdicts_and_the_pages_read_them(tmp_path, monkeypatch):
    """`miar collect` writes tables/verdicts.csv (the rule applied once, with the half that decided and the
    comparisons and seeds counted); the book's verdicts are read from it, so an edited file shows as edited."""
    import importlib

    from miar.cli import main

    V = importlib.import_module("miar.report.verdicts")
    write_fake_results(tmp_path, {**TWO, R.variant("no_contrastive"): 0.9})
    assert main(["collect", "--results", str(tmp_path), "--force"]) == 0
    table = {r["claim"]: r for r in __import__("csv").DictReader(open(tmp_path / "tables" / "verdicts.csv"))}
    assert set(table) == {c.key for c in V.CLAIMS}
    assert table["contrastive"]["verdict"] == "reproduced" and table["contrastive"]["decided_by"] == \
        "interval and permutation"
    assert table["contrastive"]["comparisons"] == "1" and table["contrastive"]["seeds"] == str(len(SEEDS))
    assert "cv_contrastive" in table["contrastive"]["interim"]  # declared, not yet run: decides nothing
    rows = {r["claim"]: r["verdict"] for r in R.verdicts(tmp_path)}
    assert all(rows[k] == table[k]["verdict"] for k in table)
    text = (tmp_path / "tables" / "verdicts.csv").read_text().replace("contrastive,True,reproduced",
                                                                     "contrastive,True,inconclusive")
    (tmp_path / "tables" / "verdicts.csv").write_text(text)
    assert {r["claim"]: r["verdict"] for r in R.verdicts(tmp_path)}["contrastive"] == "inconclusive"
