"""Shared fixtures: the real-data location and a fast synthetic config."""

import os
from pathlib import Path

import pytest

from miar import config as C
from miar.data import data_root


@pytest.fixture(scope="session")
def mosi_root() -> Path:
    root = data_root()
    if not (root / "CMU-MOSI" / "text_train0.csv").is_file():
        pytest.skip(f"real CMU-MOSI data not found at {root}/CMU-MOSI; set MIAR_DATA to the data directory")
    return root


@pytest.fixture
def tiny_cfg() -> C.Config:
    """The smoke experiment made smaller still: trains in a couple of seconds."""
    return C.load("smoke", overrides=["train.progress=false", "data.synthetic.n_train=128",
                                      "data.synthetic.n_valid=32", "data.synthetic.n_test=64"])


os.environ.setdefault("PYTHONHASHSEED", "0")
