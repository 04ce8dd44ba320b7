"""What the study runs and how the book shows it: experiment names, the metrics and their display, the
experiments each chapter reads (:func:`planned`) and the words for missing results."""

from __future__ import annotations

RESULTS_ENV = "MIAR_RESULTS"  # overrides the results directory the book reads (tests use it)
MAIN = "mosi_bc_miar"
PRIMARY = "mae"  # the metric the verdicts use: the trained objective and the selection criterion
SECONDARY = "non0_acc2"
RERUN = "miar sweep study && miar collect"
ALIGN_RERUN = "miar align <experiment> (papermill runs notebooks/alignment.ipynb over its runs with model.pt)"
NOT_RUN = "not yet run"
METRIC_INFO = {  # label, display scale, decimals (accuracies and F1 in percent, as the field reports them)
    "has0_acc2": ("Has0 Acc-2", 100, 2), "has0_f1": ("Has0 F1", 100, 2),
    "non0_acc2": ("Non0 Acc-2", 100, 2), "non0_f1": ("Non0 F1", 100, 2),
    "acc5": ("Acc-5", 100, 2), "acc7": ("Acc-7", 100, 2), "mae": ("MAE", 1, 3), "corr": ("Corr", 1, 3),
    "has0_macro_f1": ("Has0 macro-F1", 100, 2), "modality_gap": ("Modality gap", 1, 3),
}
LOWER_IS_BETTER = {"mae", "modality_gap"}
BASELINES = {  # experiment -> label: every model of the main table, same data, split and protocol
    "mosi_bc_text_only": "Text only", "mosi_bc_early_fusion": "Early fusion",
    "mosi_bc_late_fusion": "Late fusion", "mosi_bc_bclstm": "bc-LSTM (ours)",
    "mosi_bc_mult": "MulT (ours)", "mosi_bc_misa": "MISA (ours)",
}
MAIN_TABLE = {MAIN: "MIAR (ours)", **BASELINES}
STD_TABLE = {n.replace("mosi_bc_", "mosi_std_"): lab for n, lab in MAIN_TABLE.items()}  # standard split
ABLATIONS = {  # variant of MAIN -> what it changes (the study sweep holds the exact overrides)
    "no_contrastive": "no contrastive term", "no_interaction": "no feature interaction (pooled tokens)",
    "no_norm": "no normalization after projection", "batchnorm": "batch norm instead of layer norm",
    "h2": "token scheme H2 (directed, MulT-like)", "h3": "token scheme H3 (one joint masked transformer)",
    "tokens3": "three tokens (no fused token)", "weight0.03": "smaller contrastive weight",
    "weight0.3": "larger contrastive weight", "weight1": "much larger contrastive weight",
    "learnable_temp": "learnable temperature", "supcon": "supervised contrastive (polarity positives)",
    "context0": "no neighbouring utterances", "context8": "a wider window of neighbouring utterances",
    "gate": "learned gate over the tokens",
}
SYNTH = "synth_shift"  # synthetic data with known modality shifts and strengths (the alignment chapter)
SYNTH_VARIANTS = {"no_contrastive": "no contrastive term", "no_norm": "no normalization",
                  "no_align": "neither contrastive term nor normalization"}
ENCODERS = {"cnn": "released CNN (100-d)", "minilm": "all-MiniLM-L6-v2 (384-d)",
            "mpnet": "all-mpnet-base-v2 (768-d)", "static": "static Model2Vec-style (64-d)"}
HEADLINE = ("has0_acc2", "non0_acc2", "non0_f1", "acc7", "mae", "corr")  # the columns of the main tables


def planned() -> dict[str, list[str]]:
    """The experiments this book reads, by chapter."""
    return {"main table (bc split)": list(MAIN_TABLE),
            "tuning budget (learning rate 3e-4)": [f"{n}+lr3e-4" for n in MAIN_TABLE],
            "ablations": [f"{MAIN}+{v}" for v in ABLATIONS],
            "text encoders": [f"{MAIN}+{e}" for e in ENCODERS if e != "cnn"]
            + [f"mosi_bc_text_only+{e}" for e in ENCODERS if e != "cnn"],
            "standard split (context)": list(STD_TABLE),
            "synthetic (known truth)": [SYNTH, *(f"{SYNTH}+{v}" for v in SYNTH_VARIANTS)]}
