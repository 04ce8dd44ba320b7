"""What the book's pages print, checked on small inputs: the bugs a new reader found stay fixed (the MMSA note
that started mid-sentence, alignment notebooks marked "(incomplete)", negative zeros, Python lists in prose,
raw floats in the benchmark files) and the formatting helpers round as the pages need."""

import json

import pandas as pd
import pytest

from miar.report import formatting as F
from miar.report import perf as P
from miar.report import provenance as V
from miar.report.io import without_folds


def test_mmsa_note_is_a_whole_sentence():
    old = {"mmsa": {"note": "that remain (they change what is computed, slightly): MMSA's TransformerEncoder\nis "
                            "built without ``position_embedding``."}}
    note = P.mmsa_note(old)  # a file written before the adapter's fix
    assert note.startswith("Known differences that remain (they change")
    assert "\n" not in note and "``" not in note and "`position_embedding`" in note
    assert P.mmsa_note({"mmsa": {"note": note}}) == note  # a fixed file is left as it is
    assert P.mmsa_note({}) == ""


def test_mmsa_adapter_writes_the_whole_note():
    mmsa = pytest.importorskip("miar.bench.mmsa")
    note = mmsa.known_differences()
    assert note.startswith("Known differences that remain") and note.endswith("draw per element).")
    assert "\n" not in note


def _run(root, exp, run, model=True, alignment=False):
    d = root / "runs" / exp / run
    d.mkdir(parents=True)
    (d / "metrics.json").write_text("{}")
    if model:
        (d / "model.pt").write_bytes(b"")
    if alignment:
        (d / "alignment.json").write_text("{}")


def test_alignment_notebooks_are_complete_when_every_run_is_analysed(tmp_path):
    for exp in ("a", "b"):
        (tmp_path / "notebooks" / exp).mkdir(parents=True)
        for nb in ("s1.ipynb", "alignment.ipynb"):
            (tmp_path / "notebooks" / exp / nb).write_text("{}")
    _run(tmp_path, "a", "s1", alignment=True)
    _run(tmp_path, "a", "s2", model=False)  # kept no weights: not analysed, not needed
    _run(tmp_path, "b", "s1", alignment=False)
    lines = V.notebook_links(tmp_path, tmp_path / "book").splitlines()
    assert lines[0].startswith("- `a`:") and "(incomplete)" not in lines[0] and "alignment analysis" in lines[0]
    assert lines[1].count("(incomplete)") == 1 and ">alignment analysis</a> (incomplete)" in lines[1]
    assert V.notebook_done(tmp_path, "a", "alignment") and not V.notebook_done(tmp_path, "b", "alignment")
    assert V.notebook_done(tmp_path, "b", "s1") and not V.notebook_done(tmp_path, "b", "s9")


def test_cross_fitted_folds_share_one_line_and_leave_the_experiment_table(tmp_path):
    for exp in ("legacy_miar+r0f0", "legacy_miar+r1f4", "mosi_std_miar+tuned"):
        (tmp_path / "notebooks" / exp).mkdir(parents=True)
        (tmp_path / "notebooks" / exp / "s1111.ipynb").write_text("{}")
        _run(tmp_path, exp, "s1111", model=False)
    lines = V.notebook_links(tmp_path, tmp_path / "book").splitlines()
    assert len(lines) == 2 and lines[0].startswith("- `legacy_miar` (cross-fitted folds")
    assert ">r0f0/s1111</a>" in lines[0] and ">r1f4/s1111</a>" in lines[0] and "(incomplete)" not in lines[0]
    kept, folded = without_folds({"legacy_miar+r0f0": {}, "legacy_mult+r2f1": {}, "mosi_std_miar+tuned": {}})
    assert list(kept) == ["mosi_std_miar+tuned"] and folded == ["legacy_miar", "legacy_mult"]


def test_cross_cpu_table_has_no_negative_zeros():
    cmp = {"old": {"label": "A"}, "new": {"label": "B"}, "experiments": [
        {"experiment": "e", "n": 5, "old_mae": 0.85271, "new_mae": 0.85269, "old_has0_acc2": 0.79361,
         "new_has0_acc2": 0.79359},
        {"experiment": "f", "n": 5, "old_mae": 0.8, "new_mae": 0.8123, "old_has0_acc2": 0.7, "new_has0_acc2": 0.75}]}
    table = V.rerun_comparison_table(cmp)
    text = F.md_table(table)
    assert "-0 " not in text and "| -0" not in text
    assert table["Δ MAE"].tolist() == [0.0, 0.012] and table["Δ Acc-2 (points)"].tolist() == [0.0, 5.0]
    assert table["MAE (A)"].tolist() == [0.853, 0.8] and table["Has0 Acc-2 (B)"].tolist() == [79.4, 75.0]


def test_benchmark_lists_print_as_words_with_three_digits(tmp_path):
    report = {"machine": {"load_average_start": [0.29541015625, 0.74755859375, 1.22705078125]},
              "settings": {"shapes": [["mosi", True], ["mosei", False]]}, "epoch_s": 12.0}
    (tmp_path / "b.json").write_text(json.dumps(report))
    summary = dict(V.bench_tables(tmp_path / "b.json")["summary"].values.tolist())
    assert summary["machine.load_average_start"] == "0.295, 0.748, 1.23"
    assert summary["settings.shapes"] == "mosi True; mosei False"
    assert "0.30, 0.75, 1.23 at the start" in P.machine_sentence(report)


def test_formatting_helpers():
    # a bound that rounds to zero keeps its side: more decimals, to its first significant digit (at most 3 more)
    assert F.num(-0.00004, 3) == "-0.00004" and F.num(0.0004, 3, signed=True) == "+0.0004"
    assert F.num(-0.0000001, 3, signed=True) == "0.000" and F.num(0.0, 3, signed=True) == "0.000"
    assert F.num(0.0004, 3) == "0.0004" and F.num(0.01, 2, signed=True) == "+0.01"
    assert F.num(0.0126, 3, signed=True) == "+0.013" and F.num(-1.5, 1) == "-1.5"
    assert F.sig(0.29541015625) == "0.295" and F.sig(36.246) == "36.2" and F.sig(882.85) == "883"
    assert F.sig(12345.6) == "12,346"
    assert F.words(["text", "audio"]) == "text and audio" and F.words(["a", "b", "c"], "or") == "a, b or c"
    assert F.words(["text"]) == "text" and F.words([]) == ""
    block = F.dropdown("Title", "| a |\n|---|\n| 1 |")
    assert block.startswith("::::{dropdown} Title\n") and block.endswith("\n::::")
    assert F.caption("What to see.") == "**Figure.** What to see."



def test_number_cells_break_only_before_a_spread_or_an_interval():
    """A cell holding only numbers ("0.806 ± 0.015", an interval, split sizes) gets no-break spaces in the book's
    tables except before "±" and "[", so a squeezed column shows it on two lines at most, never "0.806", "±",
    "0.015" on three; a header or a short label wraps to two lines at most; a long text cell and the README's
    tables keep plain spaces."""
    nb = F.NBSP
    assert F.unbreakable("0.806 ± 0.015 (n=10)") == f"0.806 ±{nb}0.015{nb}(n=10)"
    assert F.unbreakable("+0.030 [+0.011, +0.053]") == f"+0.030 [+0.011,{nb}+0.053]"
    assert F.unbreakable("1,284 / 229 / 686 [1]") == f"1,284{nb}/{nb}229{nb}/{nb}686 [1]"
    assert F.unbreakable("[80.08, 81.08]") == "[80.08, 81.08]"  # an interval alone breaks after its comma
    assert F.unbreakable("MIAR (ours) vs Text only") == "MIAR (ours) vs Text only"
    assert F.two_lines("Total wall time (min)") == f"Total{nb}wall time{nb}(min)" and F.two_lines("MAE") == "MAE"
    assert F.two_lines("Detectable (80% power)") == f"Detectable (80%{nb}power)"
    assert F.two_lines("Has0 Acc-2 (%)") == f"Has0 Acc{F.NB_HYPHEN}2{nb}(%)"  # never "Acc-" / "2"
    assert F.two_lines("`a-b c d`") == "`a-b c d`"  # code is left as it is
    short = pd.DataFrame({"Metric": ["Has0 macro-F1 (%)"], "Note": ["a long sentence of more than twenty characters"]})
    assert F.md_table(short).splitlines()[2] == (f"| Has0 macro{F.NB_HYPHEN}F1{nb}(%) | "
                                                 "a long sentence of more than twenty characters |")
    named = pd.DataFrame({"B": ["Late fusion (MiniLM fine-tuned)"]})
    assert F.md_table(named, labels=("B",)).splitlines()[2] == f"| Late{nb}fusion (MiniLM{nb}fine{F.NB_HYPHEN}tuned) |"
    assert F.unbreakable("no number of seeds") == "no number of seeds"
    df = pd.DataFrame({"Model": ["Text only"], "MAE": ["0.806 ± 0.015"]})
    assert F.md_table(df).splitlines()[2] == f"| Text only | 0.806 ±{nb}0.015 |"
    assert F.md_table(df, nowrap=False).splitlines()[2] == "| Text only | 0.806 ± 0.015 |"


def test_long_texts_leave_the_table_as_marks_notes_or_terms():
    """A long reason standing where a number would stand becomes a letter explained once under the table
    (numbers stay); "A vs B" (one column or two) with one A says A once, in the header; two text columns become
    a definition list."""
    long = "no number of seeds (the test set alone is too small)"
    df = pd.DataFrame({"A vs B": ["MIAR vs Text only", "MIAR vs bc-LSTM"], "Seeds needed": [long, "45"],
                       "Videos needed": ["263", long]})
    text = F.md_table_marks(F.pair_column(df), ["Seeds needed", "Videos needed"])
    assert text.splitlines()[:4] == ["| MIAR vs | Seeds needed | Videos needed |", "|---|---|---|",
                                     "| Text only | a | 263 |", f"| bc{F.NB_HYPHEN}LSTM | 45 | a |"]
    assert F.pair_column(pd.DataFrame({"A vs B": ["MIAR vs bc-LSTM (ours)"]}))["MIAR vs"][0] == f"bc-LSTM{F.NBSP}(ours)"
    assert text.endswith(f"\n\na: {long}") and text.count(long) == 1
    mixed = pd.DataFrame({"A vs B": ["MIAR vs Text only", "MISA vs bc-LSTM"]})
    assert F.pair_column(mixed).equals(mixed)
    sides = pd.DataFrame({"A": ["MIAR", "MIAR"], "B": ["Text only", "MulT"], "Verdict": ["worse", "better"]})
    assert list(F.one_side(sides).columns) == ["MIAR vs", "Verdict"] and list(F.one_side(sides)["MIAR vs"]) == [
        "Text only", "MulT"]
    assert F.one_side(sides.assign(A=["MIAR", "MISA"])).equals(sides.assign(A=["MIAR", "MISA"]))
    terms = F.md_terms(pd.DataFrame({"Declared": ["Folds", "Seeds"], "Value": ["5 of whole videos", "10"]}),
                       "Declared", "Value")
    assert terms == "Folds\n: 5 of whole videos\n\nSeeds\n: 10"

def test_sweep_summary_names_what_ran(tmp_path):
    assert P.sweep_summary(tmp_path).empty
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "study-1.json").write_text(json.dumps(
        {"sweep": "/x/study.yaml", "started_utc": "2026-11-24T05:54:06Z", "wall_s": 1500.0, "workers": 2,
         "runs_in_sweep": 245, "complete_from_scratch": True}))
    row = P.sweep_summary(tmp_path).iloc[0]
    assert row["Sweep"] == "study" and row["Started (UTC)"] == "2026-11-24 05:54" and row["Wall time (min)"] == 25.0
    assert row["CPU"] == "not recorded" and row["From scratch"] == "yes"


def test_performance_figures_draw(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    report = {"mmsa": {"available": True, "mmsa_version": "2.2.1", "shapes": [
        {"preset": "mosi", "aligned": True, "batch": 32, "ours_samples_per_s": 90.0, "mmsa_samples_per_s": 50.0,
         "speedup": 1.8}]},
        "models": [{"model": m, "preset": "mosi", "aligned": a, "batch": 64, "train_samples_per_s": 100.0,
                    "infer_batch_ms": 1.0, "flops_per_train_sample": 1e6, "fraction_of_peak": 0.01}
                   for m in ("miar", "mult") for a in (True, False)]}
    assert P.speedup_figure(report) is not None and P.models_figure(report) is not None
    assert P.models_figure({"models": []}) is None
    assert list(pd.unique(P.models_table(report)["Shape"])) == ["MOSI aligned", "MOSI unaligned"]


def test_split_sizes_table_has_one_row_per_distinct_split(tmp_path):
    from miar.report.tables import split_sizes_table

    assert split_sizes_table(tmp_path).empty
    for exp, n in (("a", (10, 2, 5)), ("a+x", (10, 2, 5)), ("b", (1000, 20, 50))):
        for seed in (1, 2):
            d = tmp_path / "runs" / exp / f"s{seed}"
            d.mkdir(parents=True)
            (d / "metrics.json").write_text(json.dumps({"n": dict(zip(("train", "valid", "test"), n))}))
    t = split_sizes_table(tmp_path)
    assert t["Train / valid / test"].tolist() == ["10 / 2 / 5", "1,000 / 20 / 50"]
    assert t["Experiments"].tolist() == [2, 1] and t["Runs"].tolist() == [4, 2]
    assert t["Which"].tolist() == ["`a*`", "`b`"]


def test_figures_are_drawn_at_the_width_they_are_shown():
    """A figure wider than the book's content column is shrunk to it (text keeps its point size, so it is not
    scaled below readability by the browser); a narrower one is left as it is."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from miar.report.figures import COLUMN_PX, fit_to_column

    wide = plt.figure(figsize=(10, 4), dpi=110)
    fit_to_column(wide)
    assert wide.get_figwidth() * wide.dpi == pytest.approx(COLUMN_PX)
    assert wide.get_figheight() == pytest.approx(4 * COLUMN_PX / 1100)  # one factor for both sides
    narrow = plt.figure(figsize=(5, 3), dpi=110)
    fit_to_column(narrow)
    assert tuple(narrow.get_size_inches()) == (5, 3)
    plt.close("all")


def test_the_leakage_legend_covers_no_data(tmp_path):
    """The data page's figure puts its legend outside the axes, where no point can be under it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from miar.report.data_limits import leakage_figure

    est = {"train_heldout": {"corr": [0.8, 0.7, 0.9]}, "test": {"corr": [0.1, -0.1, 0.3]}}
    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "leakage.json").write_text(json.dumps(
        {"modalities": {m: est for m in ("text", "vision", "minilm")}}))
    fig = leakage_figure(tmp_path)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend, ax = fig.legends[0].get_window_extent(renderer), fig.axes[0].get_window_extent(renderer)
    assert legend.y1 <= ax.y0 or legend.x1 <= ax.x0 or legend.x0 >= ax.x1 or legend.y0 >= ax.y1
    plt.close("all")


def test_forest_is_drawn_at_the_column_width_with_its_legend_inside():
    """The forest plot of many long comparison labels is drawn at the content column's width, its labels
    wrapped, and its legend inside the figure (a legend past the edge would widen the saved image)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from miar.report.evidence import forest
    from miar.report.figures import COLUMN_PX

    rows = pd.DataFrame([{"a": "x", "b": f"y{i}", "metric": "mae", "diff": 0.01 * i, "ci_low_h": -0.02,
                          "ci_high_h": 0.03 + 0.01 * i, "margin": 0.02, "verdict": "inconclusive"} for i in range(6)])
    labels = ["State of the art: MIAR (MiniLM fine-tuned) vs Text only (MiniLM fine-tuned)"] * 6
    fig = forest(rows, labels)
    fig.set_dpi(110)
    assert fig.get_figwidth() * 110 <= COLUMN_PX + 1
    assert all("\n" in t.get_text() for t in fig.axes[0].get_yticklabels())
    fig.canvas.draw()
    box = fig.legends[0].get_window_extent(fig.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width
    plt.close("all")


def test_a_notebook_table_is_read_back_as_cells_and_the_text_after_it():
    """The worst-utterances table an executed notebook printed comes back as its cells (an escaped pipe as a
    pipe) and the sentence after it, so the errors page can move the transcripts under the table."""
    from miar.report.error_analysis import md_frame

    table, rest = md_frame("| Utterance | Transcript |\n|---|---|\n| a_1 | HE SAID \\| NO |\n| b_2 | OK |\n\nFrom x.")
    assert table.to_dict("list") == {"Utterance": ["a_1", "b_2"], "Transcript": ["HE SAID | NO", "OK"]}
    assert rest == "From x."
    table, rest = md_frame("no table here")
    assert table.empty and rest == "no table here"


def test_a_publication_in_a_system_name_moves_to_its_own_column():
    """"MMMU-BA (Ghosal et al., EMNLP 2018), T+A+V" keeps the system and modalities in the table; the
    publication goes to a column the page turns into a note; a name without one is kept whole."""
    from miar.report.tables import cite_apart

    df = pd.DataFrame({"System (published)": ["MMMU-BA (Ghosal et al., EMNLP 2018), T+A+V", "Majority class, -"]})
    out = cite_apart(df)
    assert out["System (published)"].tolist() == ["MMMU-BA, T+A+V", "Majority class, -"]
    assert out["Publication"].tolist() == ["Ghosal et al., EMNLP 2018", "-"]
