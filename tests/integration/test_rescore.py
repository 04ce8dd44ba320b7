"""Re-scoring tuning trials with more seeds: every complete trial runs again with the new seeds (same configuration,
no test split), the choice is the lowest mean over all seeds, and a trial whose seeds trained different
configurations, or a missing seed, is refused in one line."""

from __future__ import annotations

import csv
import json
import statistics

import pytest
import yaml
from faultkit import TINY, main, one_line

SETS = sum((["--set", o] for o in TINY), [])


@pytest.fixture(scope="module")
def rescored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rescore")
    tune = tmp / "tune"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        rc, _, err = main(["tune", "smoke", "--trials", "2", "--results", tune, "--seeds", "1", *SETS])
        assert rc == 0, err
        rc, out, err = main(["rescore", "smoke", "--seeds", "2", "--results", tune])
    assert rc == 0, err
    return tune, out


def test_every_trial_gets_the_new_seed_with_the_same_configuration(rescored):
    tune, _ = rescored
    for trial in ("smoke+t0000", "smoke+t0001"):
        s1, s2 = (tune / "runs" / trial / s for s in ("s1", "s2"))
        assert json.loads((s2 / "metrics.json").read_text())["test"] is None  # the test split never evaluated
        strip = [ln for ln in (s1 / "config.yaml").read_text().splitlines() if not ln.startswith("seed:")]
        assert strip == [ln for ln in (s2 / "config.yaml").read_text().splitlines() if not ln.startswith("seed:")]


def test_the_choice_is_the_lowest_mean_over_all_seeds(rescored):
    tune, out = rescored
    means = {}
    for t in (0, 1):
        vals = [json.loads((tune / "runs" / f"smoke+t{t:04d}" / f"s{s}" / "metrics.json").read_text())["valid"]["mae"]
                for s in (1, 2)]
        means[t] = statistics.fmean(vals)
    best = min(means, key=lambda t: (means[t], t))
    chosen = yaml.safe_load((tune / "rescored" / "smoke-best.yaml").read_text())
    assert chosen["trial"] == best and chosen["seeds"] == [1, 2]
    assert chosen["valid_mae"] == pytest.approx(means[best], abs=1e-12)
    rows = list(csv.DictReader((tune / "rescored" / "trials.csv").open()))
    assert [int(r["trial"]) for r in rows] == [0, 1] and all(r["n_seeds"] == "2" for r in rows)
    assert f"trial t{best:04d} chosen over 2 seeds" in out


def test_missing_seeds_and_mixed_configurations_are_one_line(rescored, tmp_path):
    import shutil
    tune, _ = rescored
    copy = tmp_path / "tune"
    shutil.copytree(tune, copy)
    rc, _, err = main(["rescore", "smoke", "--seeds", "1", "2", "3", "--results", copy, "--report"])
    one_line(rc, err, "smoke+t0000", "no complete record for seed(s) [3]")
    cfg = copy / "runs" / "smoke+t0001" / "s2" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("epochs: 1\n", "epochs: 2\n"))
    rc, _, err = main(["rescore", "smoke", "--seeds", "1", "2", "--results", copy, "--report"])
    one_line(rc, err, "smoke+t0001", "differ beyond the seed")
    rc, _, err = main(["rescore", "smoke", "--seeds", "1", "--results", copy])
    one_line(rc, err, "must differ from them")
