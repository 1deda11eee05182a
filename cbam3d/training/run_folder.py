"""A training run's folder (``--output``): the names of its files, and :func:`claim_run_folder`, which makes one
process its only writer for the life of a run.

Nothing here imports Lightning: the ablation runner (which only starts training processes) reads the same names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from cbam3d.utils.atomic import remove_temporaries
from cbam3d.utils.errors import UsageError
from cbam3d.utils.locking import FolderBusyError, folder_lock

__all__ = ["CHECKPOINT_DIR", "LAST_CHECKPOINT", "METRICS_FILE", "RunTerminated", "claim_run_folder"]

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
METRICS_FILE = "metrics.json"


class RunTerminated(Exception):
    """The run stopped on SIGTERM (a job scheduler, ``kill``); its checkpoints are those of its last finished
    epoch, and ``--resume`` continues it."""


@contextlib.contextmanager
def claim_run_folder(output: Path, *, resuming: bool) -> Iterator[None]:
    """Own ``output`` for the block: its lock held, what killed writes left there removed.

    Args:
        output: the run's folder (created if needed).
        resuming: whether the run continues the one in ``output``; if not, ``output`` must hold no run yet.

    Raises:
        UsageError: another process trains in ``output``, or a new run would replace the one it holds.
    """
    try:
        with folder_lock(output, what="training run"):
            last = output / CHECKPOINT_DIR / LAST_CHECKPOINT
            held = [path for path in (last, output / METRICS_FILE) if path.is_file()]
            if held and not resuming:
                raise UsageError(
                    f"--output {output} holds a run already ({held[0].relative_to(output)}): continue it with "
                    "--resume, or give another --output, or delete the folder"
                )
            # under the lock no write is under way: every temporary file of ours was left by a killed one
            remove_temporaries(output / CHECKPOINT_DIR, "*.ckpt")
            for name in (METRICS_FILE, "curves.png"):
                remove_temporaries(output, name)
            yield
    except FolderBusyError as error:
        raise UsageError(f"--output {error}") from None
