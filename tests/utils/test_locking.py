"""Folder locks (cbam3d.utils.locking): one holder at a time, a busy folder refused at once naming the holder's
pid, and the lock of a killed process free again with no clean-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from cbam3d.utils.locking import FolderBusyError, folder_lock

pytest.importorskip("fcntl", reason="folder locks need POSIX flock")

_HOLD = """
import sys, time
from cbam3d.utils.locking import folder_lock
with folder_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_holder_is_refused_at_once_naming_the_first_and_admitted_after_it(tmp_path):
    busy = pytest.raises(FolderBusyError, match=rf"in use by another process \(pid {os.getpid()}\)")
    with folder_lock(tmp_path / "run"), busy, folder_lock(tmp_path / "run"):
        pytest.fail("two holders at once")
    with folder_lock(tmp_path / "run"):
        pass


def test_the_lock_of_a_killed_process_is_free_again(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusyError, match=f"pid {holder.pid}"), folder_lock(tmp_path):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with folder_lock(tmp_path):  # no stale lock to remove by hand: this would raise FolderBusyError
        pass
