"""Shared fixtures: the real-data location and a fast synthetic config.

Real data has one rule: ``miar.data.data_root()`` ($MIAR_DATA, else ``data/`` in the checkout) holding
``CMU-MOSI/``. A test that needs it takes the ``mosi_root`` fixture (which skips without the data) and
carries the ``realdata`` marker; the collection hook below refuses one without the other.

Tests live in three tiers, by directory: ``tests/unit`` (tiny tensors and files: no subprocess, notebook or Dask;
the whole tier under 30 s, ``make test-unit``), ``tests/integration`` (components together: training runs,
collect, the report on fake results, fault injection) and ``tests/system`` (notebooks, CLI subprocesses, sweeps,
the book, the wheel, real data). The hook marks each test with its tier (``-m unit`` and so on). The helper
modules beside this file (batches, backbones, cluster, faultkit) are importable from every tier.
"""

import os
import sys
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


TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "system")  # tests/<tier>/test_*.py
sys.path.insert(0, str(TESTS))  # the helper modules, whatever tier the test file is in


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = item.path.resolve().relative_to(TESTS).parts[0] if item.path.resolve().is_relative_to(TESTS) else None
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
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
