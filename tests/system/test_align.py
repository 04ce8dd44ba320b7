"""``miar align`` then ``miar collect``: alignment numbers reach the tables from the run records."""

import csv
import json

from miar import config as C
from miar.study.align import run_alignment
from miar.study.collect import collect
from miar.train import fit


def test_align_then_collect(tmp_path, tiny_cfg):
    results = tmp_path / "results"
    cfg = C.merge(tiny_cfg, {"model": {"gate": True}, "train": {"save_model": True, "epochs": 2}})
    fit(cfg, results / "runs" / "smoke" / "s1111")
    assert run_alignment(["smoke"], results, max_points=60) == 0
    run = results / "runs" / "smoke" / "s1111"
    numbers = json.loads((run / "alignment.json").read_text())
    assert 0 <= numbers["tokens"]["modality_gap"] <= 2 ** 0.5 + 1e-6
    assert (run / "alignment_tokens.png").is_file()
    proj = numbers["projected"]  # where the contrastive loss acts: the head's projections of the modality tokens
    assert proj["acts_on"] == "tokens" and proj["groups"] == ["text", "audio", "vision"]
    assert proj["loss_pairs"] == ["text|audio", "text|vision", "audio|vision"]
    assert 0 <= proj["modality_gap"] <= 2 and (run / "alignment_projected.png").is_file()
    assert (results / "notebooks" / "smoke" / "alignment.ipynb").is_file()
    summary = collect(results)
    extra = summary["experiments"]["smoke"]["extra"]
    assert extra["align_tokens_modality_gap"]["mean"] == numbers["tokens"]["modality_gap"]
    assert extra["align_projected_modality_gap"]["mean"] == proj["modality_gap"]
    assert extra["align_projected_silhouette_polarity"]["mean"] == proj["silhouette_polarity"]["mean"]
    assert {"gate_text", "gate_fused", "valid_mae"} <= set(extra)
    row = next(csv.DictReader(open(results / "tables" / "runs.csv")))
    assert float(row["align_tokens_modality_gap"]) == numbers["tokens"]["modality_gap"]
    assert float(row["align_projected_modality_gap"]) == proj["modality_gap"]
    names = {r["mmsa"]: r for r in csv.DictReader(open(results / "tables" / "mmsa_names.csv"))}
    assert set(names) == {"Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5", "Mult_acc_7",
                          "MAE", "Corr"}
    assert names["Non0_acc_2"]["runs_csv"] in row and names["MAE"]["summary_csv"] == "mae_mean"
    assert run_alignment(["smoke"], results) == 0  # already current: skipped


def test_alignment_is_current_by_the_weights_it_analysed_not_by_file_times(tmp_path):
    import json
    import os

    from miar.study.align import is_current, stamp

    run = tmp_path / "s1"
    run.mkdir()
    (run / "model.pt").write_bytes(b"weights")
    assert not is_current(run)  # nothing analysed yet
    (run / "alignment.json").write_text(json.dumps({"tokens": {"modality_gap": 0.5}}))
    os.utime(run / "alignment.json", (1, 1))  # older than the weights, as a git checkout may leave it
    assert is_current(run)  # written before stamps existed: made from these weights
    stamp(run)
    assert is_current(run) and json.loads((run / "alignment.json").read_text())["tokens"]["modality_gap"] == 0.5
    (run / "model.pt").write_bytes(b"retrained")
    assert not is_current(run)
    (run / "alignment.json").write_text("{not json")
    assert not is_current(run)
