"""The ``cbam3d`` command: ``cbam3d <command> [options]``, one subcommand per entry of :data:`COMMANDS`.

Each subcommand keeps its own parser (and ``--help``) in the module that implements it; this module only
names them and hands the rest of the command line over. A new subcommand is one more :class:`Command` in
:data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import __version__

__all__ = ["COMMANDS", "Command", "main", "parser"]


@dataclass(frozen=True, kw_only=True)
class Command:
    """One subcommand: ``cbam3d <name>`` runs ``<module>.<main>(argv)``; ``<module>.<parser>()`` is its parser.

    The module is named rather than imported so that ``cbam3d --help`` is instant and each subcommand needs
    only its own extra (``benchmark`` runs with torch alone, ``train`` needs the ``train`` extra).
    """

    name: str
    help: str
    module: str
    parser: str
    main: str
    extra: str

    def _attribute(self, name: str) -> Callable[..., Any]:
        # Deferred: the subcommands' modules import optional heavy dependencies (PyAV, torchvision,
        # Lightning, onnxruntime) that only the chosen subcommand needs.
        return getattr(importlib.import_module(self.module), name)

    def load_parser(self) -> Callable[[], argparse.ArgumentParser]:
        """The subcommand's parser factory."""
        return self._attribute(self.parser)

    def load_main(self) -> Callable[[Sequence[str] | None], Any]:
        """The subcommand's ``main(argv)``."""
        return self._attribute(self.main)


COMMANDS: tuple[Command, ...] = (
    Command(
        name="train",
        help="train a video classifier (no arguments: the built-in demo set)",
        module="cbam3d.training.cli",
        parser="train_parser",
        main="train_main",
        extra="train",
    ),
    Command(
        name="evaluate",
        help="video-level top-1/top-5, per-class accuracy and confusion matrix of a checkpoint",
        module="cbam3d.inference.cli",
        parser="evaluate_parser",
        main="evaluate_main",
        extra="train",
    ),
    Command(
        name="predict",
        help="top-k classes of video files (whole files or sliding windows) with a checkpoint or an export",
        module="cbam3d.inference.cli",
        parser="predict_parser",
        main="predict_main",
        extra="train",
    ),
    Command(
        name="visualize",
        help="draw a trained network's attention over the frames of a video",
        module="cbam3d.viz.cli",
        parser="parser",
        main="main",
        extra="train",
    ),
    Command(
        name="prepare",
        help="a training-friendly copy of a data set: the same layout, videos re-encoded small and quick to seek",
        module="cbam3d.data.cli",
        parser="prepare_parser",
        main="prepare_main",
        extra="video",
    ),
    Command(
        name="benchmark",
        help="time and memory of the attention modules against hand-written blocks, or (--data) data-loading clips/s",
        module="cbam3d.benchmark.cli",
        parser="benchmark_parser",
        main="benchmark_main",
        extra="",
    ),
    Command(
        name="ablate",
        help="train a grid of attentions, variants and seeds and tabulate accuracy against cost",
        module="cbam3d.training.ablation.cli",
        parser="ablate_parser",
        main="ablate_main",
        extra="train",
    ),
    Command(
        name="export",
        help="export a checkpoint to ONNX or torch.export (.pt2) and check it against PyTorch",
        module="cbam3d.inference.export",
        parser="export_parser",
        main="export_main",
        extra="export",
    ),
)


def parser() -> argparse.ArgumentParser:
    """The top-level parser: a command name and the arguments that go to the command."""
    width = max(len(command.name) for command in COMMANDS)
    listing = "\n".join(f"  {command.name:<{width}}  {command.help}" for command in COMMANDS)
    result = argparse.ArgumentParser(
        prog="cbam3d",
        description="CBAM, BAM, SE and ECA attention for video classifiers: training, evaluation, prediction, "
        "visualisation, benchmarks and export.",
        epilog=f"commands:\n{listing}\n\n'cbam3d COMMAND --help' explains each command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    result.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    result.add_argument(
        "command", choices=[command.name for command in COMMANDS], metavar="COMMAND", help="one of the commands below"
    )
    result.add_argument("arguments", nargs=argparse.REMAINDER, metavar="...", help="the command's own arguments")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cbam3d COMMAND ...``; returns the command's exit status (0 when it returns no status)."""
    top = parser()
    args = top.parse_args(argv)
    command = next(command for command in COMMANDS if command.name == args.command)
    try:
        command_main = command.load_main()
    except ModuleNotFoundError as error:
        needs = f"; install it with pip install 'cbam3d[{command.extra}]'" if command.extra else ""
        top.error(f"'cbam3d {command.name}' needs {error.name}, which is not installed{needs}")
    status = command_main(args.arguments)
    return status if isinstance(status, int) else 0
