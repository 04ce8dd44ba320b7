"""Build-time helpers for the book and the README: they read ``results/`` and never train.

Every number the book shows comes from a function here reading the files ``miar collect`` and the run records
leave behind (``summary.json``, ``tables/runs.csv``, ``runs/<experiment>/<run>/*``, ``bench/*.json``); the
only numbers written in this package are the published anchors (``ANCHORS_BC``, ``ANCHORS_STD``, in
:mod:`miar.report.anchors`), each with its source and protocol, and they never share a column with ours.
Missing results are not an error: tables show "not yet run" and the book says so.

Seeds: ours are mean +- population std (ddof 0, as MMSA reports) with the Student-t 95% interval of the mean
(:func:`miar.metrics.summarize_seeds`). A comparison of two experiments is the difference of their seed means
with a Welch 95% interval; it is "better" / "worse" only when that interval excludes 0 (:func:`compare`).

``python -m miar.report readme [README.md] [results]`` rewrites the README's generated blocks (the lead and the results).
As a Sphinx extension (``_config.yml``: ``extra_extensions: [miar.report]``) it makes every page depend on
``results/``, so an incremental build re-executes all pages when any result changed (:func:`setup`).

Submodules: ``study`` (experiment names, metric display), ``anchors`` (published numbers), ``io`` (reading
``results/``), ``formatting`` (markdown), ``tables``, ``compare`` (Welch comparisons), ``verdicts`` (claims),
``spec`` (the specification gap), ``figures``, ``provenance`` (compute, environment, benchmarks, notebooks),
``readme`` and ``sphinx``. This namespace re-exports what the book pages, tests, Makefile and _config.yml use.
"""

from miar.report.anchors import ANCHORS_BC, ANCHORS_STD
from miar.report.catalog import (
    ABLATIONS,
    ALIGN_RERUN,
    BASELINES,
    BC_FT_TABLE,
    BC_TABLE,
    COMPONENTS,
    ENCODERS,
    FT,
    HEADLINE,
    LEGACY_TABLE,
    MAIN,
    MAIN_FT_TABLE,
    MAIN_TABLE,
    MODELS,
    NOT_YET_RUN,
    PRIMARY,
    RERUN,
    RESULTS_ENV,
    SEEDS_PLANNED,
    SYNTH,
    SYNTH_GAP,
    SYNTH_INTERACTION,
    SYNTH_STRENGTHS,
    SYNTH_VARIANTS,
    TUNING,
    parts,
    tuned,
    variant,
)
from miar.report.compare import compare, welch, welch_table
from miar.report.data_limits import headroom_table, leakage_figure, leakage_table, probe_settings
from miar.report.evidence import (
    calibration_table,
    diff_text,
    evidence_line,
    forest,
    load_comparisons,
    margins_history,
    margins_table,
    oriented,
    power_table,
    rows_of,
    settings_sentence,
)
from miar.report.evidence import comparison_table as evidence_table
from miar.report.figures import (
    curves_figure,
    curves_grid,
    encoder_figure,
    forest_figure,
    page_setup,
    seed_figure,
    show_figure,
)
from miar.report.findings import display_name, findings, headline, main_claim_rows
from miar.report.formatting import (
    dropdown,
    fmt,
    fmt_stats,
    label,
    md_table,
    md_table_marks,
    md_table_notes,
    md_terms,
    not_yet_run,
    one_side,
    pair_column,
    show,
    words,
)
from miar.report.io import (
    alignment_frame,
    bench_files,
    env_frame,
    load_legacy,
    load_runs,
    load_summary,
    notebooks,
    results_dir,
    run_dirs,
    seed_values,
    staleness,
    without_folds,
)
from miar.report.lead import lead_block, lead_parts, missed_targets
from miar.report.perf import (
    epoch_runs_table,
    kernel_overhead,
    load_bench,
    mmsa_table,
    models_table,
    readme_speed,
    scaling_figure,
    speedup_figure,
    sweep_records,
    targets_table,
)
from miar.report.provenance import (
    bench_tables,
    commits_by_table,
    compute_table,
    environment_table,
    notebook_links,
    repo_link,
    rerun_comparison,
    rerun_comparison_table,
    rerun_table,
)
from miar.report.readme import END, LEAD_END, LEAD_START, START, readme_table, update_readme
from miar.report.spec import SPEC, config_value, inferred_keys, main_config, shown_value, spec_table, study_overrides
from miar.report.sphinx import setup
from miar.report.study_time import study_time_table, study_wall
from miar.report.tables import (
    ablation_names,
    anchor_table,
    cite_apart,
    gate_table,
    gate_vs_truth,
    present,
    results_table,
    split_sizes_table,
    stats_of,
    status_table,
    summary_frame,
    variants,
)
from miar.report.tuning import (
    best_by_validation,
    budget_table,
    chosen,
    chosen_table,
    ranked_by_validation,
    search_figure,
    trials,
)
from miar.report.verdicts import CLAIMS, combine, complete, title_tag, verdict_table, verdicts

__all__ = [
    "ABLATIONS", "ALIGN_RERUN", "ANCHORS_BC", "ANCHORS_STD", "BASELINES", "ENCODERS", "END", "HEADLINE",
    "MAIN", "PRIMARY", "epoch_runs_table", "kernel_overhead", "load_bench", "mmsa_table", "models_table", "readme_speed",
    "scaling_figure", "speedup_figure", "study_time_table", "study_wall", "sweep_records", "targets_table", "best_by_validation", "diff_text", "evidence_line", "evidence_table", "forest", "load_comparisons", "power_table", "rows_of", "ranked_by_validation", "budget_table", "chosen", "chosen_table", "search_figure", "trials",
    "MAIN_TABLE", "MAIN_FT_TABLE", "BC_FT_TABLE", "FT", "SEEDS_PLANNED", "complete", "NOT_YET_RUN", "RERUN", "RESULTS_ENV", "SPEC", "START", "BC_TABLE", "COMPONENTS", "LEGACY_TABLE", "MODELS",
    "SYNTH", "SYNTH_GAP", "SYNTH_INTERACTION", "SYNTH_STRENGTHS", "SYNTH_VARIANTS", "TUNING", "parts", "tuned", "variant",
    "ablation_names", "alignment_frame", "anchor_table", "bench_files", "bench_tables", "repo_link", "commits_by_table", "compare",
    "welch_table", "compute_table", "config_value", "curves_figure", "env_frame", "environment_table", "fmt",
    "fmt_stats", "forest_figure", "gate_table", "gate_vs_truth", "inferred_keys", "label", "load_runs",
    "load_summary", "main_config", "md_table", "md_table_marks", "md_table_notes", "md_terms", "one_side", "pair_column", "cite_apart", "not_yet_run", "notebook_links", "notebooks", "page_setup",
    "present", "readme_table", "rerun_comparison", "rerun_comparison_table", "rerun_table", "results_dir", "results_table", "run_dirs", "seed_figure", "seed_values", "setup",
    "show", "spec_table", "staleness", "stats_of", "status_table", "study_overrides", "summary_frame", "title_tag",
    "update_readme", "shown_value", "lead_block", "lead_parts", "missed_targets", "LEAD_START", "LEAD_END", "variants", "verdict_table", "verdicts", "welch", "CLAIMS", "combine", "show_figure", "display_name", "findings", "headline", "main_claim_rows", "margins_history", "margins_table", "calibration_table", "oriented", "encoder_figure", "dropdown", "curves_grid", "words", "split_sizes_table", "headroom_table", "leakage_figure", "leakage_table", "probe_settings", "settings_sentence", "without_folds", "load_legacy",
]
