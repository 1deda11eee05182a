"""The command line of ``cbam3d ablate``: the grid's own flags; every other option goes to the train command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cbam3d.utils.atomic import no_space_message
from cbam3d.utils.errors import UsageError
from cbam3d.utils.locking import FolderBusyError, folder_lock

from ..cli import train_parser
from ..declaration import literal_or_text
from ..settings import TrainConfig, attention_choices, resolve_config
from .grid import MAX_GRID_RUNS, Recipe, check_vary, expand_grid, parse_recipe, read_grid_file, shown
from .report import write_report
from .runner import conflicting_runs, run_grid

__all__ = ["ablate_main", "ablate_parser"]

# Settings of the train command that the grid sets for each run, and what to use instead.
_GRID_OWNED = {"attention_kwargs": "--vary", "seed": "--seeds", "resume": "nothing (resuming is automatic)"}


def ablate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cbam3d ablate",
        allow_abbrev=False,  # so the train command's --seed is not taken for --seeds
        description="Train a grid of attention configurations x seeds with the train command and tabulate "
        "accuracy (mean ± std, difference to no attention with a 95%% confidence interval) and cost "
        "(parameters, GFLOPs, clips/s, peak memory) in OUTPUT/results.csv, results.md and results.png. "
        "Every other option is passed to the train command (e.g. --data, --epochs, --frames, --demo hard).",
        epilog="Resumable: run the same command again to continue a grid; finished runs are reused, an "
        "interrupted one resumes from its checkpoint. Example: cbam3d ablate --attention none se cbam "
        "--vary cbam.gate_order channel_spatial spatial_channel parallel --seeds 0 1 2 --output runs/ablation "
        "--demo hard --threads 1",
    )
    parser.add_argument(
        "--attention",
        nargs="+",
        metavar="NAME",
        help=f"attentions to compare, each with its default options: {', '.join(attention_choices())} "
        "(none: no attention, the baseline); default: all of them (or the --grid file's)",
    )
    parser.add_argument(
        "--vary",
        nargs="+",
        action="append",
        metavar=("ATTENTION.OPTION", "VALUE"),
        help="also train ATTENTION with OPTION set to each VALUE (Python literals or words), one option at a "
        "time, e.g. --vary cbam.gate_order channel_spatial spatial_channel parallel; repeatable",
    )
    parser.add_argument(
        "--recipe",
        action="append",
        metavar="NAME=OPTIONS",
        help="train every configuration with each of these named sets of train options, compared as "
        'configurations are, e.g. --recipe default= --recipe strong="--augment randaugment --mixup 0.8 --cutmix '
        '1.0 --ema 0.99"; repeatable; the first recipe is the baseline when no attention none is trained',
    )
    parser.add_argument(
        "--grid",
        type=Path,
        metavar="FILE",
        help='JSON or YAML file with the grid: {"attention": [...], "vary": {"cbam.kernel_size": [3, 7]}, '
        '"seeds": [...], "recipe": ["NAME=OPTIONS", ...]}, added to the command line\'s',
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, metavar="S", help="seeds of every configuration; default: 0 1 2"
    )
    parser.add_argument(
        "--output", type=Path, default=Path("runs/ablation"), metavar="DIR", help="default: runs/ablation"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: rebuild the results from the finished runs under --output",
    )
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads of each run; default: the train's")
    return parser


def _grid_from_arguments(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[list[str], dict[str, list[Any]], list[int], list[str]]:
    """(attentions, {ATTENTION.OPTION: values}, seeds, recipe texts) from the command line and the --grid file,
    checked (the recipes by :func:`_recipes_from_texts`)."""
    from_file = {"attention": [], "vary": {}, "seeds": [], "recipe": []}
    if args.grid is not None:
        try:
            from_file = read_grid_file(args.grid)
        except ValueError as error:
            parser.error(f"--grid {error}")
    vary = dict(from_file["vary"])
    for key, *values in args.vary or []:
        vary[key] = vary.get(key, []) + [literal_or_text(value) for value in values]
    for key, values in vary.items():
        problem = check_vary(key, values)
        if problem:
            parser.error(f"--vary {problem}")
    attentions = list(dict.fromkeys([*(args.attention or []), *from_file["attention"]]))
    if not attentions and not vary:
        attentions = list(attention_choices())
    unknown = [name for name in attentions if name not in attention_choices()]
    if unknown:
        parser.error(f"--attention {shown(unknown[0])} is not known; choose from {', '.join(attention_choices())}")
    seeds = list(dict.fromkeys([*(args.seeds or []), *from_file["seeds"]])) or [0, 1, 2]
    if any(seed < 0 for seed in seeds):
        parser.error(f"--seeds must be 0 or more, got {shown(seeds)}")
    return attentions, vary, seeds, [*(args.recipe or []), *from_file["recipe"]]


def _check_train_arguments(parser: argparse.ArgumentParser, common: list[str]) -> None:
    """Parse and check the options passed to the train command, reporting a problem as this command's error."""
    train = train_parser()
    train.prog = parser.prog
    train.error = parser.error  # one line from this command, not the train command's usage
    config = TrainConfig.from_arguments(train.parse_args(common))
    for name, instead in _GRID_OWNED.items():
        if getattr(config, name) is not None:
            parser.error(f"{TrainConfig.flag(name)} is set by the grid for each run; use {instead}")
    try:
        resolve_config(config)
    except UsageError as error:
        parser.error(str(error))


def _recipes_from_texts(parser: argparse.ArgumentParser, texts: list[str], common: list[str]) -> list[Recipe]:
    """The ``--recipe`` sets, each checked with the common train options."""
    recipes = []
    for text in texts:
        try:
            recipe = parse_recipe(text)
        except ValueError as error:
            parser.error(f"--recipe {error}")
        _check_train_arguments(parser, [*common, *recipe.options])
        recipes.append(recipe)
    names = [recipe.name for recipe in recipes]
    if len(set(names)) < len(names):
        parser.error(f"--recipe names must differ, got {', '.join(names)}")
    return recipes


def ablate_main(argv: Sequence[str] | None = None) -> int:
    """``cbam3d ablate``: exit status 0 when every run finished, 1 when some failed (or the disk is full), 2 on bad
    input (or another ablation running into the same --output), 130 when interrupted (Ctrl-C), 143 when
    terminated (SIGTERM)."""
    parser = ablate_parser()
    args, common = parser.parse_known_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be a positive integer, got {args.threads}")
    if args.report_only:
        if not args.output.is_dir():
            parser.error(f"--output {args.output}: no such directory, nothing to report")
        write_report(args.output)
        print(f"results: {args.output / 'results.md'}")
        return 0
    _check_train_arguments(parser, common)
    attentions, vary, seeds, recipe_texts = _grid_from_arguments(parser, args)
    runs = expand_grid(attentions, vary, seeds, _recipes_from_texts(parser, recipe_texts, common))
    if len(runs) > MAX_GRID_RUNS:
        parser.error(f"the grid expands to {len(runs)} runs, more than {MAX_GRID_RUNS}: give fewer values or seeds")
    conflicts = conflicting_runs(runs, args.output, common)
    if conflicts:
        parser.error(f"{conflicts[0]} holds a run started with other train options; use another --output or delete it")
    try:
        with folder_lock(args.output, what="ablation"):
            failed = run_grid(runs, args.output, common, threads=args.threads)
            write_report(args.output, runs_total=len(runs))
    except FolderBusyError as error:
        parser.error(f"--output {error}")
    except OSError as error:
        if no_space_message(error) is None:
            raise
        print(f"{parser.prog}: error: {no_space_message(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"{parser.prog}: interrupted; run the same command again to continue (finished runs are reused, the "
            "interrupted one resumes)",
            file=sys.stderr,
        )
        return 130
    print(f"results: {args.output / 'results.md'}, {args.output / 'results.csv'}, {args.output / 'results.png'}")
    if failed:
        print(f"{len(failed)} of {len(runs)} runs failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
