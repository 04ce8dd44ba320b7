"""What the study runs and how the book shows it: experiment names, the metrics and their display, the
experiments each chapter reads (:func:`planned`) and the words for missing results."""

from __future__ import annotations

from miar.declared import MODEL_NAMES, TUNING  # noqa: F401 (TUNING re-exported: model -> its tuning study)

RESULTS_ENV = "MIAR_RESULTS"  # overrides the results directory the book reads (tests use it)
MAIN = "mosi_std_miar+tuned"  # the primary setting: standard split, leak-free modalities, the tuned configuration
PRIMARY = "mae"  # the metric the verdicts use: the trained objective and the selection criterion
SECONDARY = "non0_acc2"
RERUN = "make study (miar tune for each model, then miar sweep primary, ablations, legacy, synthetic; miar collect)"
ALIGN_RERUN = "miar align <experiment> (papermill runs notebooks/alignment.ipynb over its runs with model.pt)"
NOT_YET_RUN = "not yet run"
METRIC_INFO = {  # label, display scale, decimals (accuracies and F1 in percent, as the field reports them)
    "has0_acc2": ("Has0 Acc-2", 100, 2), "has0_f1": ("Has0 F1", 100, 2),
    "non0_acc2": ("Non0 Acc-2", 100, 2), "non0_f1": ("Non0 F1", 100, 2),
    "acc5": ("Acc-5", 100, 2), "acc7": ("Acc-7", 100, 2), "mae": ("MAE", 1, 3), "corr": ("Corr", 1, 3),
    "has0_macro_f1": ("Has0 macro-F1", 100, 2), "modality_gap": ("Modality gap", 1, 3),
}
LOWER_IS_BETTER = {"mae", "modality_gap"}
LABELS = {"miar": "MIAR (ours)", "text_only": "Text only", "early_fusion": "Early fusion",
          "late_fusion": "Late fusion", "bclstm": "bc-LSTM (ours)", "mult": "MulT (ours)", "misa": "MISA (ours)"}
MODELS = {m: LABELS[m] for m in MODEL_NAMES}  # the compared models (miar.declared), in its order, with their labels


def tuned(model: str, split: str = "std") -> str:
    """The primary table's experiment of ``model`` (a key of :data:`MODELS`) on ``split`` (std or bclf)."""
    return f"mosi_{split}_{model}+tuned"


def variant(name: str, base: str = MAIN) -> str:
    """An ablation of ``base``: ``base.name`` when base is itself a variant (``mosi_std_miar+tuned.no_norm``)."""
    return f"{base}.{name}" if "+" in base else f"{base}+{name}"


def parts(experiment: str) -> tuple[str, str]:
    """(the table row, the variant of it): ``mosi_std_miar+tuned.no_norm`` -> (``mosi_std_miar+tuned``, ``no_norm``),
    ``mosi_std_mult+tuned`` -> (itself, ""), ``synth_gap+no_norm`` -> (``synth_gap``, ``no_norm``)."""
    base, plus, v = experiment.partition("+")
    if not plus:
        return experiment, ""
    head, dot, rest = v.partition(".")
    if dot:
        return f"{base}+{head}", rest
    return (experiment, "") if v == "tuned" else (base, v)


BASELINES = {tuned(m): lab for m, lab in MODELS.items() if m != "miar"}  # the primary table's baselines
MAIN_TABLE = {MAIN: MODELS["miar"], **BASELINES}  # standard split (52/10/31 videos), leak-free, tuned
BC_TABLE = {tuned(m, "bclf"): lab for m, lab in MODELS.items()}  # bc split, leak-free, the same configurations
FT = "ft_minilm"  # the primary table's fine-tuned text arm (sweep primary_ft): MiniLM, top two layers trained
MAIN_FT_TABLE = {variant(FT, tuned(m)): lab for m, lab in MODELS.items()}  # standard split, fine-tuned text + audio
BC_FT_TABLE = {variant(FT, tuned(m, "bclf")): lab for m, lab in MODELS.items()}  # bc split, the same
SEEDS_PLANNED = 10  # the primary table's seeds (1111-1120); the fine-tuned arm's comparisons count when complete
CV_TABLE = {f"mosi_cv_{m}": lab for m, lab in MODELS.items()}  # the cross-validated primary study (all_cv)
CV_EXTRA = {"mosi_cv_miar_nointeraction": "MIAR, no interaction", "mosi_cv_miar_nocontrastive": "MIAR, no contrastive",
            "mosi_cv_text_only_aa": "Text only (A/A copy)", "mosi_cv_miar_aa": "MIAR (A/A copy)"}
LEGACY_TABLE = {f"legacy_{m}": lab for m, lab in MODELS.items()}  # released T+A+V, cross-fitted in the bc test
ABLATIONS = {  # variant of MAIN -> what it changes (miar/experiments/sweeps/ablations.yaml holds the overrides)
    "no_contrastive": "no contrastive term", "no_interaction": "no feature interaction (pooled tokens)",
    "no_norm": "no normalization after projection", "tokens3": "three tokens (no fused token)",
    "gate": "learned gate over the tokens",
    "pooled": "contrastive term on the pooled unimodal features (before the interaction)",
    "no_norm_noz": "no normalization and no input z-scoring", "w128l2": "width 128, two layers",
    "batchnorm": "batch norm instead of layer norm", "h2": "directed tokens (MulT-like)",
    "h3": "joint tokens (one masked transformer)", "learnable_temp": "learnable temperature",
    "supcon": "supervised contrastive (polarity positives)", "context0": "no neighbouring utterances",
    "context8": "a wider window of neighbouring utterances",
}
COMPONENTS = ("no_interaction", "no_contrastive", "no_norm", "tokens3", "gate")  # the abstract's own (10 seeds)
SYNTH_GAP, SYNTH_INTERACTION, SYNTH_STRENGTHS = "synth_gap", "synth_interaction", "synth_strengths"
SYNTH = SYNTH_GAP  # the alignment claim's synthetic check: a modality gap z-scoring cannot remove
SYNTH_VARIANTS = {"no_contrastive": "no contrastive term", "no_norm": "no normalization"}
ENCODERS = {"mpnet": "all-mpnet-base-v2, frozen (768-d)", "minilm": "all-MiniLM-L6-v2, frozen (384-d)",
            "static": "static Model2Vec-style (64-d)",
            "ft_minilm": "all-MiniLM-L6-v2, fine-tuned (top 2 layers)"}  # mpnet: the primary table's own
HEADLINE = ("has0_acc2", "non0_acc2", "non0_f1", "acc7", "mae", "corr")  # the columns of the main tables


def planned() -> dict[str, list[str]]:
    """The experiments this book reads, by chapter."""
    from miar.declared import sweep_experiments

    return {"primary table (standard split)": list(MAIN_TABLE),
            "primary table (bc split, leak-free)": list(BC_TABLE),
            "primary table, fine-tuned text (both splits)": list(MAIN_FT_TABLE) + list(BC_FT_TABLE),
            "legacy features (cross-fitted in the bc test videos)": list(LEGACY_TABLE),
            "cross-validated primary study (all 93 videos)": list(CV_TABLE) + list(CV_EXTRA),
            "ablations": [variant(v) for v in ABLATIONS],
            "text generalization (encoders)": sweep_experiments("textgen"),
            "synthetic (known truth)": [SYNTH_GAP, *(f"{SYNTH_GAP}+{v}" for v in SYNTH_VARIANTS),
                                        SYNTH_INTERACTION, f"{SYNTH_INTERACTION}+no_interaction",
                                        f"{SYNTH_INTERACTION}+late_fusion", f"{SYNTH_INTERACTION}+text_only",
                                        SYNTH_STRENGTHS, f"{SYNTH_STRENGTHS}+gate"]}
