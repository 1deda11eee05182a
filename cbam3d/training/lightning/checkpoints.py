"""The two checkpoints of a run, kept consistent with each other and with the folder they are in.

``last.ckpt`` (every epoch, what ``--resume`` continues from) holds the state of the best-checkpoint callback,
and so the name of the best checkpoint. Lightning saves the new ``best-*.ckpt`` and deletes the old one before
``last.ckpt`` is saved: a run killed in between leaves a ``last.ckpt`` that names a deleted file. Here the old
best is deleted only after ``last.ckpt`` has been saved (:class:`BestCheckpoint`, :class:`LastCheckpoint`), so
the best checkpoint named by ``last.ckpt`` always exists; a best file that ``last.ckpt`` does not name is left
over from an interrupted epoch and is removed when the run that resumes it ends.

Both callbacks re-root the paths stored in a checkpoint onto their own folder when a run is resumed, so a run
folder that was moved or copied resumes with its own files, never the original folder's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn

__all__ = ["BEST_PATTERN", "BestCheckpoint", "LastCheckpoint"]

BEST_PATTERN = "best-*.ckpt"
"""The file names of best checkpoints (``best-epoch{epoch:03d}-top1{val_top1:.4f}.ckpt``)."""

_PATH_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path")


class _RunFolderCheckpoint(ModelCheckpoint):
    @property
    def state_key(self) -> str:
        # Lightning keys a callback's state by class name: keep ModelCheckpoint's, so that runs saved before
        # these subclasses existed still resume with their checkpoint state.
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        stored = state_dict.get("dirpath")
        if stored is not None and self.dirpath is not None and str(stored) != str(self.dirpath):
            state_dict = _rerooted(state_dict, Path(stored), Path(self.dirpath))
        super().load_state_dict(state_dict)


def _rerooted(state: dict[str, Any], old: Path, new: Path) -> dict[str, Any]:
    """``state`` with every path of a file in ``old`` moved into ``new`` (a run folder moved or copied)."""

    def moved(path: Any) -> Any:
        return str(new / Path(path).name) if path and Path(path).parent == old else path

    state = {key: moved(value) if key in _PATH_KEYS else value for key, value in state.items()}
    state["best_k_models"] = {moved(path): score for path, score in state.get("best_k_models", {}).items()}
    state["dirpath"] = str(new)
    return state


class BestCheckpoint(_RunFolderCheckpoint):
    """``best-*.ckpt``: the best epoch by a monitored value, one file; the superseded file is deleted only once
    :class:`LastCheckpoint` has saved the state that names the new one."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._superseded: list[str] = []

    def _remove_checkpoint(self, trainer: Any, filepath: str) -> None:
        self._superseded.append(filepath)

    def remove_superseded(self, trainer: Any) -> None:
        """Delete the best checkpoints replaced since the last call (after ``last.ckpt`` names their successor)."""
        for path in self._superseded:
            trainer.strategy.remove_checkpoint(path)
        self._superseded.clear()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if self.best_model_path and not Path(self.best_model_path).is_file():
            rank_zero_warn(
                f"the best checkpoint {self.best_model_path} named by the resumed checkpoint is missing; the best "
                "is chosen again among the epochs still to train (the last checkpoint if there are none)"
            )
            self.best_model_path, self.best_model_score, self.best_k_models = "", None, {}
            self.kth_best_model_path = ""
            self.kth_value = torch.tensor(float("-inf") if self.mode == "max" else float("inf"))

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)
        if not trainer.is_global_zero or self.dirpath is None:
            return
        # Under the run's lock, a best file that the run's state does not name was saved by an epoch interrupted
        # before its last.ckpt (or by a run whose last.ckpt never came to be): not this run's best.
        keep = {Path(self.best_model_path).resolve()} if self.best_model_path else set()
        if trainer.ckpt_path:
            keep.add(Path(trainer.ckpt_path).resolve())
        for leftover in Path(self.dirpath).glob(BEST_PATTERN):
            if leftover.resolve() not in keep:
                trainer.strategy.remove_checkpoint(leftover)


class LastCheckpoint(_RunFolderCheckpoint):
    """``last.ckpt``, every epoch; once saved, the best checkpoints it no longer names are deleted.

    Args:
        best: the run's :class:`BestCheckpoint` (listed before this callback, so that its state is current).
    """

    def __init__(self, *, best: BestCheckpoint, **options: Any) -> None:
        super().__init__(**options)
        self._best = best

    def _save_checkpoint(self, trainer: Any, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._best.remove_superseded(trainer)
