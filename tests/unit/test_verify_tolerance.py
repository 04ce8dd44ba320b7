"""How far collect lets a record's test metrics lie from those recomputed from its 6-decimal predictions: 1e-6,
and for Pearson r the rounding bound e (1 + |r|) / sd, which a briefly trained model's near-constant predictions
need (its r moves by more than 1e-6 when each prediction is rounded)."""

import numpy as np

from miar.metrics import compute_all
from miar.study.verify import TOLERANCE, tolerances


def test_rounding_never_moves_a_metric_beyond_its_tolerance():
    rng = np.random.default_rng(0)
    for spread in (1.0, 0.01, 0.001):
        y = rng.normal(size=32)
        p = 0.1 + spread * (0.3 * y + rng.normal(size=32))
        exact = compute_all(p, y)
        rounded = np.round(p, 6)
        got = compute_all(rounded, y)
        tol = tolerances(rounded, got)
        for m in ("mae", "corr"):
            assert abs(got[m] - exact[m]) <= tol[m], (spread, m)
        assert tol["mae"] == TOLERANCE
    assert tolerances(np.full(5, 0.3), {"corr": 0.0})["corr"] == TOLERANCE  # constant predictions: r is 0 exactly
