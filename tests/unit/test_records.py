"""Run-record files: written atomically, with the permissions the umask gives, the rename made durable."""

import os
import stat

import pytest

from miar import atomic as records
from miar.records import atomic_write


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_gives_the_umask_permissions(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "new.json", "{}\n")
        (tmp_path / "old.json").write_text("x")
        atomic_write(tmp_path / "old.json", b"y")  # replacing a file: the same rule
    finally:
        os.umask(old)
    for name in ("new.json", "old.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert (tmp_path / "new.json").read_text() == "{}\n" and (tmp_path / "old.json").read_bytes() == b"y"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_atomic_write_fsyncs_the_file_then_its_directory(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(records.os, "fsync", spy)
    atomic_write(tmp_path / "metrics.json", "{}")
    assert synced == [False, True]


def test_umask_is_read_without_changing_it():
    old = os.umask(0o027)
    try:
        assert records._umask() == 0o027
        assert os.umask(0o027) == 0o027  # still what it was
    finally:
        os.umask(old)


def test_environment_keeps_the_simd_level_beside_the_cpu_name():
    from miar.records import environment, simd_level

    level = simd_level()
    assert level.startswith("torch ") and level.split(",")[0].split()[1] in {
        "DEFAULT", "AVX2", "AVX512", "SVE256", "SVE", "NEON", "VSX", "ZVECTOR"}
    env = environment("cpu", 1, 0.5)
    assert env["cpu_simd"] == level and env["device_name"]
