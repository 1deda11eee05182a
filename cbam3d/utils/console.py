"""What the command lines show around a training run: no dependency noise, and a closing summary.

Only the commands use this module: importing cbam3d changes no logging or warning settings of its users.
"""

from __future__ import annotations

import logging
import shlex
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["COMMAND", "closing_summary", "command", "quiet_dependencies"]

COMMAND = "cbam3d {}"
"""How our commands are spelled in messages, ``{}`` standing for the command's name (``evaluate``)."""

# Lightning logs its info messages, tips included, through these (which one depends on the import order).
_LIGHTNING_INFO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning_utilities.core.rank_zero",
)
# Deprecation warnings raised from these packages' own code: nothing a user of the command can act on.
_DEPENDENCIES = ("lightning", "lightning_fabric", "lightning_utilities", "pytorch_lightning", "torch", "torchvision")
_DEPENDENCY_MODULES = rf"({'|'.join(_DEPENDENCIES)})(\.|$)"


class _DropAdvertisements(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing litlogger / litmodels" messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡")


@contextmanager
def quiet_dependencies() -> Iterator[None]:
    """Within the block: no third-party tips from Lightning and no deprecation warnings raised from the code
    of Lightning or torch (such as ``isinstance(treespec, LeafSpec)`` is deprecated). Everything else, our
    own messages and Lightning's other information and warnings included, is shown as usual."""
    drop = _DropAdvertisements()
    loggers = [logging.getLogger(name) for name in _LIGHTNING_INFO_LOGGERS]
    for logger in loggers:
        logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category, module=_DEPENDENCY_MODULES)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)


def command(name: str, *arguments: str | Path) -> str:
    """The command line running our command ``name`` with ``arguments`` (quoted for a POSIX shell)."""
    return " ".join([COMMAND.format(name), *(shlex.quote(str(a)) for a in arguments)])


def _shown(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter to read and to copy)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def closing_summary(metrics: Mapping[str, Any]) -> str:
    """The lines printed at the end of a training run: its result, where its files are and what to run next.

    Args:
        metrics: what :func:`cbam3d.training.lightning.train` returns (``val_top1``, ``val_top5``, ``epochs``,
            ``seconds``, ``output``, ``best_checkpoint``).
    """
    output = Path(metrics["output"])
    best = _shown(metrics["best_checkpoint"])
    shown = {name: _shown(output / name) for name in ("metrics.json", "curves.png", "checkpoints", "tensorboard")}
    epochs = metrics["epochs"]
    lines = [
        f"Trained {epochs} epoch{'s' * (epochs != 1)} in {_duration(metrics['seconds'])}: video-level validation "
        f"top-1 {100 * metrics['val_top1']:.1f}%, top-5 {100 * metrics['val_top5']:.1f}% (best checkpoint).",
        f"  metrics:      {shown['metrics.json']}",
    ]
    if (output / "curves.png").is_file():  # not written by a resumed run that had no epoch left
        lines.append(f"  curves:       {shown['curves.png']}")
    lines += [
        f"  checkpoints:  {shown['checkpoints']}/ (best: {best})",
        f"  TensorBoard:  tensorboard --logdir {shlex.quote(shown['tensorboard'])}",
        "Next:",
        f"  {command('evaluate', '--checkpoint', best)}",
        f"  {command('predict', 'VIDEO.mp4', '--checkpoint', best)}",
        f"  {command('visualize', 'VIDEO.mp4', '--checkpoint', best, '--output', 'viz/')}",
    ]
    return "\n".join(lines)
