"""Atomic writes (cbam3d.utils.atomic): the target holds the old or the complete new content, never a part, no
temporary file is left behind, new files get the mode the umask allows while replaced ones keep theirs, a write
that finds no room (full disk, file-size limit, quota) says so naming the target, and the temporaries of killed
writes are cleared without touching other files."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys

import pytest
import torch

from cbam3d.utils.atomic import (
    atomic_torch_save,
    atomic_write,
    atomic_write_json,
    no_space_message,
    remove_temporaries,
)


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


def _write_then_fail_with(error_number):
    def write(file):
        file.write(b"part of it")
        raise OSError(error_number, os.strerror(error_number))

    return write


@pytest.mark.parametrize("error_number", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
def test_a_write_that_finds_no_room_names_the_target_and_keeps_the_previous_file(tmp_path, error_number):
    target = tmp_path / "last.ckpt"
    atomic_torch_save({"epoch": 1}, target)
    with pytest.raises(OSError) as raised:
        atomic_write(target, _write_then_fail_with(error_number))
    assert raised.value.errno == error_number and raised.value.filename == str(target)
    assert no_space_message(raised.value).endswith(f" while writing {target}")
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["last.ckpt"]


_FILE_SIZE_LIMIT = """
import resource, signal, sys, torch
from cbam3d.utils.atomic import atomic_torch_save, no_space_message
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so that a write past the limit fails with EFBIG, not the process
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    atomic_torch_save({"weights": torch.zeros(100_000)}, sys.argv[1])
except OSError as error:
    print(no_space_message(error))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs POSIX file-size limits")
def test_a_write_past_the_file_size_limit_says_so_and_keeps_the_previous_checkpoint(tmp_path):
    """A real failed write under torch.save, which turns the writer's OSError into RuntimeError("unexpected pos"):
    the error raised is the disk's, naming the target."""
    target = tmp_path / "last.ckpt"
    atomic_torch_save({"epoch": 1}, target)
    result = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT, str(target)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"the file size limit (ulimit -f) is reached while writing {target}"
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_removing_temporaries_removes_only_those_of_writes_to_the_names_given(tmp_path):
    ours = [tmp_path / ".last.ckpt.k3j_9xq2.tmp", tmp_path / ".best-epoch001-top10.5000.ckpt.abcdefgh.tmp"]
    others = [tmp_path / ".metrics.json.abcdefgh.tmp", tmp_path / "notes.tmp", tmp_path / ".last.ckpt.tmp"]
    others += [tmp_path / "last.ckpt", tmp_path / ".last.ckpt.too-long-a-name.tmp"]
    for path in ours + others:
        path.write_bytes(b"x")
    assert sorted(remove_temporaries(tmp_path, "*.ckpt")) == sorted(ours)
    assert sorted(tmp_path.iterdir()) == sorted(others)


def test_a_check_that_refuses_the_written_file_leaves_the_target_as_it_was(tmp_path):
    target = atomic_write_json({"epoch": 1}, tmp_path / "model.json")
    seen = []

    def refuse(written):
        seen.append(json.loads(written.read_text()))  # the new content, complete, under a temporary name
        raise ValueError("not the network's logits")

    with pytest.raises(ValueError, match="not the network's logits"):
        atomic_write(target, lambda file: file.write(b'{"epoch": 2}'), check=refuse)
    assert seen == [{"epoch": 2}]
    assert json.loads(target.read_text()) == {"epoch": 1} and os.listdir(tmp_path) == ["model.json"]
