"""Shared fixtures: the real-data location and a fast synthetic config.

Real data has one rule: ``miar.data.data_root()`` ($MIAR_DATA, else ``data/`` in the checkout) holding
``CMU-MOSI/``. A test that needs it takes the ``mosi_root`` fixture (which skips without the data) and
carries the ``realdata`` marker; the collection hook below refuses one without the other. The hook also
marks the unit layer (``unit``: ``make test-unit``).
"""

import os
from pathlib import Path

import pytest

from miar import config as C
from miar.data import data_root


def real_data() -> Path | None:
    """The real data root, or None when it holds no CMU-MOSI files."""
    root = data_root()
    return root if (root / "CMU-MOSI" / "transcripts.csv").is_file() else None


@pytest.fixture(scope="session")
def mosi_root() -> Path:
    root = real_data()
    if root is None:
        pytest.skip(f"real CMU-MOSI data not found at {data_root()}/CMU-MOSI; set MIAR_DATA to the data directory")
    return root


UNIT = {  # the unit layer (make test-unit, under 30 s): tiny tensors and files, no training run, no subprocess
    "test_analysis", "test_baselines", "test_batch", "test_config", "test_golden", "test_layers", "test_losses",
    "test_metrics", "test_model", "test_pickles", "test_records", "test_structure", "test_synthetic",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.stem in UNIT:
            item.add_marker(pytest.mark.unit)
        uses = "mosi_root" in getattr(item, "fixturenames", ())
        marked = item.get_closest_marker("realdata") is not None
        if uses != marked:
            raise pytest.UsageError(f"{item.nodeid}: a test that needs the real data takes the mosi_root fixture "
                                    f"and carries @pytest.mark.realdata (has {'the fixture' if uses else 'the mark'})")


@pytest.fixture
def tiny_cfg() -> C.Config:
    """The smoke experiment made smaller still: trains in a couple of seconds."""
    return C.load("smoke", overrides=["train.progress=false", "data.synthetic.n_train=128",
                                      "data.synthetic.n_valid=32", "data.synthetic.n_test=64"])


os.environ.setdefault("PYTHONHASHSEED", "0")
