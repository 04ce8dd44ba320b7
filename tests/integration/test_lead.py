"""The whole answer on the first screen (miar.report.lead): built from the comparisons ``miar collect`` wrote
on a small fake results directory, it puts each claim under the outcome its verdict reached with the
difference of the deciding comparison and a link, names every missed performance target, and sits in the
README's first 25 lines."""

import json
from pathlib import Path

import pytest
from test_report import write_fake_results

from miar import report as R

ROOT = Path(__file__).resolve().parents[2]
#  MIAR clearly better than the variant without the contrastive term, clearly worse than the one without
#  the feature interaction: one claim reproduced, one contradicted.
EXPERIMENTS = {R.MAIN: 0.5, R.variant("no_contrastive"): 1.0, R.variant("no_interaction"): 0.2}


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    write_fake_results(root, EXPERIMENTS)
    return root


def _row(comps, b: str):
    rows = R.rows_of(comps, "components_std")
    return rows[rows["b"] == b].iloc[0]


def test_lead_sorts_claims_by_their_verdict_with_numbers_and_links(fake):
    verdicts = {r["claim"]: r for r in R.verdicts(fake)}
    assert verdicts["contrastive"]["verdict"] == "reproduced" and verdicts["interaction"]["verdict"] == "contradicted"
    parts = R.lead_parts(fake, link=lambda page: f"<{page}>")
    comps = R.load_comparisons(fake)
    assert verdicts["contrastive"]["text"] in parts["reproduced"]
    assert R.diff_text(_row(comps, R.variant("no_contrastive"))) in parts["reproduced"]
    assert verdicts["interaction"]["text"] in parts["contradicted"] and "MIAR worse" in parts["contradicted"]
    assert R.diff_text(_row(comps, R.variant("no_interaction"))) in parts["contradicted"]
    assert "(ablations](<ablations>)" in parts["reproduced"].replace("[", "(")
    assert verdicts["interaction"]["text"] not in parts["undecided"]
    assert parts["verdict"] == R.headline(list(verdicts.values()))
    assert "[¬Re]" in parts["verdict"]  # a main claim contradicted


def test_readme_gets_the_lead_and_the_results_block(fake, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{R.LEAD_START}\nold lead\n{R.LEAD_END}\n\nmiddle\n\n{R.START}\nold\n{R.END}\n")
    assert R.update_readme(readme, fake) is True
    text = readme.read_text()
    assert "old lead" not in text and R.lead_block(fake) in text and "\n\nmiddle\n\n" in text
    assert R.update_readme(readme, fake) is False
    readme.write_text(f"# x\n\n{R.START}\nold\n{R.END}\n")  # no lead block: refused, nothing written
    with pytest.raises(ValueError, match="lead:start"):
        R.update_readme(readme, fake)
    assert readme.read_text() == f"# x\n\n{R.START}\nold\n{R.END}\n"


def test_missed_targets_name_the_value_and_the_target(tmp_path):
    assert R.missed_targets(tmp_path) == []
    bench = {"machine": {"cpu_model": "fake CPU", "cores": 2, "torch_threads": 2, "torch": "2.13.0"},
             "mult_train_speedup_vs_mmsa": 1.8, "miar_mosei_epoch_s": 41.0}
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "cpu.json").write_text(json.dumps(bench))
    missed = R.missed_targets(tmp_path)
    assert len(missed) == 1 and "41.0 s" in missed[0] and "over the target (≤ 30 s)" in missed[0]
    (tmp_path / "bench" / "cpu.json").write_text(json.dumps({**bench, "miar_mosei_epoch_s": 20.0}))
    assert R.missed_targets(tmp_path) == []
    from miar.report.speed import LABELS
    bounds = {"frozen_run_s_median": 4.0, "finetune_epoch_s": 7.0, "finetune_run_s_median": 100.0,
              "workers2_speedup": 1.7, "study_wall_s": 14400.0, "book_noop_s": 90.0}
    met = {"frozen_run_s_median": False, "workers2_speedup": False, "study_wall_s": False}
    speed = {"frozen_run_s_median": 15.4, "workers2_speedup": 1.2, "study_wall_s": 29178.0,
             "targets": {"bounds": bounds, "met": met}}
    (tmp_path / "bench" / "study_speed.json").write_text(json.dumps(speed))
    missed = R.missed_targets(tmp_path)  # the study's own time is the cpu.json row's: not repeated
    assert len(missed) == 2 and not any(LABELS["study_wall_s"].lower() in m for m in missed)
    assert missed == ["a frozen-encoder run (median) 15.4 s (target ≤ 4.0 s)", "2 workers over 1 1.20× (target ≥ 1.7×)"]


def test_committed_readme_leads_with_the_answer():
    """The README's first 25 lines hold the generated lead: the verdict and every reproduced and contradicted
    claim of the committed results, then the two commands."""
    first = "\n".join((ROOT / "README.md").read_text().splitlines()[:25])
    assert R.LEAD_START in first and R.LEAD_END in first and "make book" in first and "make test" in first
    rows = R.verdicts(ROOT / "results")
    assert R.headline(rows) in first
    for r in rows:
        if r["verdict"] in ("reproduced", "contradicted", "equivalent"):
            assert r["text"].removeprefix("The same ") in first, r["claim"]
