"""Seeded golden forward outputs of MIAR and every baseline (eval mode, the hand-made test batch).

The values were written by this file's ``__main__`` from the code at the commit that added them; a change
to any model's parameter-initialisation order or arithmetic shows here. Regenerate them only on purpose
(``python tests/unit/test_golden.py``), and say in the commit why the numbers moved.
"""

import sys
import typing

import pytest
import torch
from batches import DIMS, make_batch  # noqa: I001 (tests/batches.py)

from miar import config as C
from miar.model import build_model

VARIANTS = {  # name -> model config delta (d_model 16, 2 heads, head_hidden 8 for all)
    "miar": {"name": "miar"},
    "miar_gate_h3": {"name": "miar", "gate": True, "token_scheme": "joint"},
    "text_only": {"name": "text_only"},
    "early_fusion": {"name": "early_fusion"},
    "late_fusion": {"name": "late_fusion"},
    "bclstm": {"name": "bclstm"},
    "mult": {"name": "mult"},
    "misa": {"name": "misa"},
}
GOLDEN = {  # (variant, context window) -> the first five predictions, to 1e-5
    ("miar", False): [-0.214878, -0.189339, -0.187268, -0.276713, -0.248509],
    ("miar", True): [-0.189523, -0.122084, -0.074384, -0.209767, -0.16398],
    ("miar_gate_h3", False): [-0.141916, -0.290853, -0.179385, -0.197946, -0.18751],
    ("miar_gate_h3", True): [-0.117412, 0.131412, 0.037947, -0.141923, -0.279392],
    ("text_only", False): [0.231956, 0.00429, 0.103903, 0.098624, 0.169935],
    ("text_only", True): [-0.224297, -0.435914, -0.240196, -0.062253, 0.027621],
    ("early_fusion", False): [0.142041, 0.06941, 0.167268, 0.169212, 0.166352],
    ("early_fusion", True): [0.119301, 0.007121, 0.064182, 0.057024, 0.003944],
    ("late_fusion", False): [-0.038899, -0.077079, -0.032024, 0.017416, 0.006851],
    ("late_fusion", True): [-0.123171, 0.264124, 0.11177, -0.098138, 0.107577],
    ("bclstm", False): [-0.251015, -0.250543, -0.251812, -0.251581, -0.252907],
    ("bclstm", True): [-0.26795, -0.260451, -0.26152, -0.264965, -0.266187],
    ("mult", False): [0.086912, -1.506415, -1.0075, -0.549387, -0.715628],
    ("mult", True): [-1.122728, -0.806964, -0.789277, -0.193383, 0.111517],
    ("misa", False): [-0.264723, -0.233723, -0.246612, -0.274724, -0.271316],
    ("misa", True): [-0.184664, -0.201126, -0.194452, -0.252916, -0.244395],
}


def predictions(variant: str, context: bool) -> list[float]:
    cfg = C.merge(C.Config(), {"model": {"d_model": 16, "n_heads": 2, "head_hidden": 8, **VARIANTS[variant]}})
    torch.manual_seed(1234)
    model = build_model(cfg, DIMS).eval()
    with torch.no_grad():
        return model(make_batch(context=context)).pred[:5].tolist()


@pytest.mark.parametrize("variant,context", sorted(GOLDEN))
def test_golden_forward(variant, context):
    assert predictions(variant, context) == pytest.approx(GOLDEN[(variant, context)], abs=1e-5)


def test_every_model_has_golden_values():
    assert {v for v, _ in GOLDEN} == set(VARIANTS)
    names = typing.get_args(typing.get_type_hints(C.ModelConfig)["name"])
    assert {VARIANTS[v]["name"] for v in VARIANTS} == set(names)


if __name__ == "__main__":  # print a fresh GOLDEN table
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))  # tests/: batches.py
    for variant in VARIANTS:
        for context in (False, True):
            print(f'    ("{variant}", {context}): {[round(v, 6) for v in predictions(variant, context)]},')


def test_weights_saved_before_the_shared_encoder_predict_as_recorded():
    """A committed MIAR run (synthetic data, model.pt in the old layout) loads under today's module names and
    reproduces the test predictions in its record: the restructuring moved modules, not the arithmetic."""
    import csv
    from pathlib import Path

    from miar.data import iterate
    from miar.study.analysis import load_run

    # the record of results/runs/synth_shift/s1111 (commit 5f0be71, before the shared encoder), kept as a fixture
    # when the study's redesign retired synth_shift's records
    run = Path(__file__).resolve().parents[1] / "fixtures" / "old_layout_run"
    _, test, model = load_run(run, "test")
    with torch.no_grad():
        pred = torch.cat([model(b).pred for b in iterate(test, 256)]).tolist()
    recorded = {r["id"]: float(r["pred"]) for r in csv.DictReader(open(run / "predictions.csv"))}
    assert [recorded[i] for i in test.ids] == pytest.approx(pred, abs=1e-5)
