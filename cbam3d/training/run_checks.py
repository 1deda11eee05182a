"""What a training run checks before it starts: the checkpoint ``--resume`` continues from and whether it fits the
settings, and the classes of the data set. Lightning-free, like :mod:`.run_folder`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cbam3d.utils.errors import UsageError

from .run_folder import CHECKPOINT_DIR, LAST_CHECKPOINT
from .settings import TrainConfig

__all__ = ["check_classes", "check_resumable", "epochs_completed", "output_dir", "resolve_resume_checkpoint"]


def output_dir(config: TrainConfig) -> Path:
    """The run folder: ``--output``, or the default one."""
    return Path(config.output if config.output is not None else config.default_for("output")).expanduser()


def resolve_resume_checkpoint(config: TrainConfig) -> Path | None:
    """The checkpoint ``--resume`` continues from: the given path, or ``OUTPUT/checkpoints/last.ckpt``.

    Raises:
        UsageError: if resuming was asked for and there is no such checkpoint.
    """
    if config.resume is False or config.resume is None:
        return None
    if config.resume is True:
        path = output_dir(config) / CHECKPOINT_DIR / LAST_CHECKPOINT
    else:
        path = Path(config.resume).expanduser()
    if not path.is_file():
        raise UsageError(
            f"--resume: nothing to resume, {path} does not exist (was the run started with this --output?)"
        )
    return path


# settings that shape the network's weights: a resumed run must keep them
_NETWORK_SETTINGS = ("model", "attention", "attention_kwargs", "model_options", "multi_label")


def check_resumable(config: TrainConfig, info: dict[str, Any], checkpoint: Path) -> None:
    """Raise :class:`UsageError` naming the first network setting that differs from the checkpoint's run."""
    stored = info.get("config", {})
    for name in _NETWORK_SETTINGS:
        flag = TrainConfig.flag(name)
        if name in stored and stored[name] != getattr(config, name):
            raise UsageError(
                f"--resume: {checkpoint} was trained with {flag} {stored[name]!r}, not {getattr(config, name)!r}; "
                f"resume without {flag}, or start a new --output"
            )


def check_classes(class_names: list[str], root: Path) -> None:
    """Raise :class:`UsageError` unless the data set has the two classes or more that a single-label classifier
    tells apart (a softmax over one class is always certain, and its accuracy always 100%)."""
    if len(class_names) < 2:
        found = f"only one, {class_names[0]!r}" if class_names else "none"
        raise UsageError(f"--data {root}: a classifier needs at least two classes, found {found}")


def epochs_completed(checkpoint: dict[str, Any]) -> int:
    """The epochs a checkpoint saved at the end of an epoch has completed (Lightning stores the 0-based epoch)."""
    return int(checkpoint.get("epoch", -1)) + 1
