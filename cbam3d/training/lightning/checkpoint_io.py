"""A Lightning ``CheckpointIO`` whose writes are rename-atomic (Lightning's default one is not)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from cbam3d.utils.atomic import atomic_torch_save

__all__ = ["AtomicCheckpointIO"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves each checkpoint to a temporary file in the same folder, fsyncs it and ``os.replace``-s it into place.

    An interrupted save (a crash, a full disk, a killed job) leaves the previous ``last.ckpt`` intact, so
    ``--resume`` always finds a complete checkpoint. Loading and removing are Lightning's own.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        atomic_torch_save(checkpoint, path)
