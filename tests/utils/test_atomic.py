"""Atomic writes (cbam3d.utils.atomic): the target holds the old or the complete new content, never a part, no
temporary file is left behind, and new files get the mode the umask allows while replaced ones keep theirs."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from cbam3d.utils.atomic import atomic_torch_save, atomic_write, atomic_write_json


def test_atomic_write_replaces_the_target_with_the_complete_new_content(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    atomic_write(target, lambda file: file.write(b"new content"))
    assert target.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["file.bin"]


def test_a_failed_write_leaves_the_previous_file_intact_and_no_temporary_file(tmp_path):
    target = tmp_path / "last.ckpt"
    atomic_torch_save({"epoch": 1}, target)

    def half_then_crash(file):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_crash)
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["last.ckpt"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_give_new_files_the_mode_the_umask_allows(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = atomic_write_json({"a": 1}, tmp_path / "new.json")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_atomic_writes_keep_the_mode_of_the_file_they_replace(tmp_path):
    path = tmp_path / "kept.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write(path, lambda file: file.write(b"new"))
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o640
