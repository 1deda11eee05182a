"""A callback that measures a run's training throughput (clips per second) and its peak memory."""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L
import torch

if sys.platform != "win32":
    import resource
else:  # Windows has no getrusage: the CPU peak is then not reported
    resource = None

__all__ = ["TrainingThroughput"]


class TrainingThroughput(L.Callback):
    """Training clips per second, over all devices, and the peak memory of this process.

    The time counted runs from the start of each training epoch to its last training batch (data loading,
    forward, backward and optimizer steps; not validation). Memory is the peak of allocated CUDA memory on
    a GPU, the peak resident set size of the process on the CPU.
    """

    def __init__(self) -> None:
        self.clips = 0
        self.seconds = 0.0
        self._epoch_start: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.clips += int(batch["video"].shape[0]) * trainer.world_size
        now = time.perf_counter()
        self.seconds += now - self._epoch_start
        self._epoch_start = now

    def clips_per_second(self) -> float | None:
        """Training clips per second, None before the first training batch."""
        return self.clips / self.seconds if self.seconds > 0 else None

    @staticmethod
    def peak_memory_mb(device: torch.device) -> float | None:
        """Peak allocated CUDA memory on ``device``, or the process's peak resident memory on the CPU (MiB)."""
        if device.type == "cuda":
            return torch.cuda.max_memory_allocated(device) / 2**20
        if resource is None:
            return None
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
