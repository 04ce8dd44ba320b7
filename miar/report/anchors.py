"""The published anchors: the only numbers written in this package, each with its source and protocol.
They are set beside ours in separate columns (:func:`miar.report.tables.anchor_table`), never in one."""

from __future__ import annotations

from dataclasses import dataclass

from miar.report.catalog import tuned

BC_MIAR = tuned("miar", "bclf")  # ours on the bc split: the leak-free modalities (mpnet text + audio), tuned


@dataclass(frozen=True)
class Anchor:
    """One published number, in the publication's scale (percent for accuracies)."""

    system: str
    modalities: str
    metric: str  # our metric key it corresponds to
    value: float
    runs: str
    source: str
    protocol: str
    ours: str | None  # the experiment of ours to set beside it ("majority": computed from our test labels)


# Each source's protocol as its released code shows it (REFERENCE.md section 4), not one label for all:
_BCLSTM = "bc split; 20% of training videos held out, early stop on validation loss; one seed (clean)"
_CATF = "bc split; best test accuracy over epochs printed (test-set selection); macro-F1"
_MMMU = "bc split; the test set passed as validation data (test-set selection); 5 seeds"
_KUMAR = "bc split; protocol unknown (secondary listing)"
ANCHORS_BC = (  # REFERENCE.md section 4; binary label = score >= 0, i.e. our has0 convention
    Anchor("Majority class", "-", "has0_acc2", 62.10, "-", "467 / 752 test labels >= 0", "bc split",
           "majority"),
    Anchor("bc-LSTM (Poria et al., ACL 2017)", "T", "has0_acc2", 78.12, "1", "paper, tables 3-4", _BCLSTM,
           tuned("text_only", "bclf")),
    Anchor("bc-LSTM (Poria et al., ACL 2017)", "A", "has0_acc2", 60.31, "1", "paper, tables 3-4", _BCLSTM, None),
    Anchor("bc-LSTM (Poria et al., ACL 2017)", "V", "has0_acc2", 55.80, "1", "paper, tables 3-4", _BCLSTM, None),
    Anchor("bc-LSTM (Poria et al., ACL 2017)", "T+A+V", "has0_acc2", 80.30, "1", "paper", _BCLSTM,
           tuned("bclstm", "bclf")),
    Anchor("CATF-LSTM (Poria et al., ICDM 2017)", "T+A+V", "has0_macro_f1", 81.3, "1", "paper", _CATF, BC_MIAR),
    Anchor("MMMU-BA (Ghosal et al., EMNLP 2018)", "T+A+V", "has0_acc2", 82.31, "mean of 5", "paper", _MMMU, BC_MIAR),
    Anchor("MMMU-BA (Ghosal et al., EMNLP 2018)", "T+A+V", "has0_macro_f1", 81.12, "mean of 5", "paper", _MMMU,
           BC_MIAR),
    Anchor("Kumar & Vepa (ICASSP 2020)", "T+A+V", "has0_acc2", 83.91, "?", "secondary listing only", _KUMAR, BC_MIAR),
)
_STD = "standard split, aligned BERT features, seeds 1111-1115"
ANCHORS_STD = tuple(  # MMSA framework's results table, standard MOSI split (REFERENCE.md section 4)
    Anchor(system, "T+A+V", metric, value, "mean of 5", "MMSA results table", _STD, ours)
    for system, ours, values in (
        ("MISA (MMSA)", tuned("misa"), (81.84, 83.54, 41.37, 0.777, 0.778)),
        ("Self-MM (MMSA)", None, (83.44, 85.46, 46.67, 0.708, 0.796)),
        ("MulT (MMSA)", tuned("mult"), (79.71, 80.98, 36.91, 0.880, 0.702)))
    for metric, value in zip(("has0_acc2", "non0_acc2", "acc7", "mae", "corr"), values))
