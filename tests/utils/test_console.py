"""cbam3d.utils.console: ``quiet_dependencies`` silences the dependencies' tips and deprecations inside its block
only (the commands use it; the library leaves logging and warnings alone)."""

from __future__ import annotations

import logging
import warnings

from cbam3d.utils.console import quiet_dependencies


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_quiet_dependencies_filters_only_inside_the_block_and_only_dependencies():
    """Inside: Lightning's tips and deprecations raised from torch / Lightning code are dropped, ours are kept.
    Outside (users importing the library): nothing is dropped."""
    tip_logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")

    def shown() -> tuple[list[str], list[str]]:
        collect = _Collect()
        tip_logger.addHandler(collect)
        try:
            with warnings.catch_warnings(record=True) as caught:  # the filters in force, not "always"
                for module in ("torch.utils._pytree", "lightning.pytorch.utilities._pytree", "cbam3d.training.cli"):
                    warnings.warn_explicit(f"old API in {module}", FutureWarning, "file.py", 1, module=module)
                tip_logger.info("💡 Tip: try installing litlogger")
                tip_logger.info("GPU available: False")
        finally:
            tip_logger.removeHandler(collect)
        return [str(w.message) for w in caught], collect.messages

    level = tip_logger.level
    tip_logger.setLevel(logging.INFO)
    try:
        everything = shown()
        with quiet_dependencies():
            inside = shown()
        after = shown()
    finally:
        tip_logger.setLevel(level)
    assert inside == (["old API in cbam3d.training.cli"], ["GPU available: False"])
    assert after == everything and len(everything[0]) == 3 and len(everything[1]) == 2
