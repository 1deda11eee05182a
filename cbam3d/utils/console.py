"""What the command lines show: no dependency noise, and our commands spelled as a user types them.

Only the commands use this module: importing cbam3d changes no logging or warning settings of its users.
"""

from __future__ import annotations

import logging
import shlex
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["COMMAND", "command", "quiet_dependencies"]

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
