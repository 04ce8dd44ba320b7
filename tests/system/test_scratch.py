"""A sweep's LocalCluster leaves nothing in the temporary folder: its scheduler's and workers' Dask scratch space
and its kernels' connection files live in a folder of the driver's own, removed when the cluster closes,
normally or by Ctrl-C."""

import tempfile

import pytest

from miar.study import engine


@pytest.fixture
def tmpdir_of_its_own(tmp_path, monkeypatch):
    """``$TMPDIR`` for this process (``tempfile`` caches it) and the workers it starts: an empty folder."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def test_a_local_cluster_leaves_no_scratch_space_behind(tmpdir_of_its_own):
    """The folder is used while the cluster runs and empty once it has closed, after a normal end and after
    Ctrl-C (a KeyboardInterrupt in the driver); the scheduler's ``dask-scratch-space`` used to stay."""
    with engine.connect(workers=1):
        assert list(tmpdir_of_its_own.iterdir()), "the cluster wrote nothing there: nothing to test"
    assert list(tmpdir_of_its_own.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        with engine.connect(workers=1):
            raise KeyboardInterrupt
    assert list(tmpdir_of_its_own.iterdir()) == []
