"""``cbam3d ablate``: train a grid of attention configurations x seeds and tabulate what each one gains and costs.

The grid is the attentions of ``--attention`` (``none`` is the baseline without attention), each with its
default options, plus one configuration for every value of every ``--vary ATTENTION.OPTION VALUE ...``
(one option changed at a time around the defaults, not a cross product; a value equal to the option's
default is the plain configuration again and is not trained twice), times ``--seeds``. Every run is the
train command itself, in a subprocess, with the options given after the grid's own, in its own folder
``OUTPUT/<configuration>-seed<S>``. The command is resumable: a run whose ``metrics.json`` exists is reused,
one with a checkpoint but no metrics is resumed (``--resume``), any other is started again.

``OUTPUT`` then holds ``results.csv`` (one row per finished run), ``results.md`` (per configuration: mean and
standard deviation of the video-level top-1 and top-5 over seeds, the difference in top-1 to ``none`` with
a 95 % Welch t confidence interval, parameters, GFLOPs, training clips/s and peak memory) and
``results.png`` (top-1 with error bars, and top-1 against GFLOPs). Nothing here imports Lightning: the
training runs in the subprocesses.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import io
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cbam3d.attention.registry import ATTENTION, attention_names, create_attention
from cbam3d.inference.plots import pyplot, save_png
from cbam3d.utils.atomic import atomic_write, atomic_write_json
from cbam3d.utils.errors import UsageError

from .cli import train_parser
from .declaration import literal_or_text
from .settings import TrainConfig, attention_choices, resolve_config

__all__ = ["GridRun", "ablate_main", "ablate_parser", "read_grid_file", "t_quantile_975", "welch_interval"]

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
BASELINE = "none"
# The train command in a fresh interpreter: the same training code as `cbam3d train`.
_TRAIN_COMMAND = "import sys; from cbam3d.training.cli import train_main; sys.exit(train_main(sys.argv[1:]))"
# Options of the train command that the grid sets for each run.
_GRID_OWNED = {"attention_kwargs": "--vary", "seed": "--seeds", "resume": "nothing (resuming is automatic)"}


@dataclass(frozen=True)
class GridRun:
    """One run of the grid: an attention (``"none"`` for the baseline), its options and a seed."""

    attention: str
    options: tuple[tuple[str, Any], ...]
    seed: int

    @property
    def configuration(self) -> str:
        """The configuration's label, e.g. ``cbam`` or ``cbam gate_order=parallel``."""
        return " ".join([self.attention, *(f"{key}={value}" for key, value in self.options)])

    @property
    def folder(self) -> str:
        """The run's folder name: the configuration and the seed, in file-name-safe characters."""
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", f"{self.configuration.replace(' ', '-')}-seed{self.seed}")

    def train_arguments(self) -> list[str]:
        """The train command's options that make this run (besides those common to the grid)."""
        arguments = ["--attention", self.attention, "--seed", str(self.seed)]
        for key, value in self.options:
            arguments += ["--attention-option", f"{key}={value!r}"]
        return arguments


def _t_density(t: float, df: float) -> float:
    log_scale = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_scale - (df + 1) / 2 * math.log1p(t * t / df))


def _t_probability_from_zero(q: float, df: float, *, intervals: int = 2000) -> float:
    """P(0 <= T <= q) for Student's t with ``df`` degrees of freedom (Simpson's rule; the density is smooth)."""
    step = q / intervals
    inner = sum((4 if i % 2 else 2) * _t_density(i * step, df) for i in range(1, intervals))
    return step / 3 * (_t_density(0.0, df) + inner + _t_density(q, df))


def t_quantile_975(degrees_of_freedom: float) -> float:
    """The 97.5 % quantile of Student's t (the half-width factor of a 95 % interval), for any df >= 1.

    Newton's method on the numerically integrated distribution (scipy is not a dependency); accurate to
    about 1e-6, which is far below what a confidence interval needs.
    """
    if not degrees_of_freedom >= 1:
        raise ValueError(f"degrees_of_freedom must be at least 1, got {degrees_of_freedom}")
    q = 1.96 + 2.5 / degrees_of_freedom + 8.0 / degrees_of_freedom**3  # near the answer from df 1 to infinity
    for _ in range(50):
        correction = (_t_probability_from_zero(q, degrees_of_freedom) - 0.475) / _t_density(q, degrees_of_freedom)
        q -= correction
        if abs(correction) < 1e-9:
            break
    return q


def welch_interval(sample: Sequence[float], baseline: Sequence[float]) -> tuple[float, float, float] | None:
    """Difference of means ``mean(sample) - mean(baseline)`` and its 95 % Welch t interval ``(diff, low, high)``.

    None when either sample has fewer than two values (no variance to estimate).
    """
    if len(sample) < 2 or len(baseline) < 2:
        return None
    mean_a, mean_b = _mean(sample), _mean(baseline)
    var_a, var_b = _std(sample) ** 2 / len(sample), _std(baseline) ** 2 / len(baseline)
    difference = mean_a - mean_b
    if var_a + var_b == 0:
        return difference, difference, difference
    df = (var_a + var_b) ** 2 / (var_a**2 / (len(sample) - 1) + var_b**2 / (len(baseline) - 1))
    half = t_quantile_975(max(df, 1.0)) * math.sqrt(var_a + var_b)
    return difference, difference - half, difference + half


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1); 0 for a single value."""
    if len(values) < 2:
        return 0.0
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


# --- the grid ---------------------------------------------------------------------------------------------


def _option_default(attention: str, option: str) -> Any:
    parameter = inspect.signature(ATTENTION[attention].builder).parameters.get(option)
    return inspect.Parameter.empty if parameter is None else parameter.default


def _check_vary(attention: str, option: str, values: Sequence[Any]) -> str | None:
    """None if every value builds the attention, else a one-line description of what is wrong."""
    if attention not in ATTENTION:
        return (
            f"unknown attention {attention!r} in {attention}.{option}: expected one of {', '.join(attention_names())}"
        )
    if not option.isidentifier():
        return f"{attention}.{option}: the option must be a Python name"
    if not values:
        return f"{attention}.{option}: give at least one value"
    for value in values:
        try:
            create_attention(attention, None, dims=3, **{option: value})
        except (TypeError, ValueError) as error:
            return f"{attention}.{option} {value!r}: {error}"
    return None


def expand_grid(attentions: Sequence[str], vary: dict[str, list[Any]], seeds: Sequence[int]) -> list[GridRun]:
    """Every run of the grid, configurations in the order given, each with all its seeds; duplicates once."""
    configurations: list[tuple[str, tuple[tuple[str, Any], ...]]] = [(name, ()) for name in attentions]
    for key, values in vary.items():
        attention, _, option = key.partition(".")
        for value in values:
            same_as_plain = value == _option_default(attention, option)
            configurations.append((attention, () if same_as_plain else ((option, value),)))
    unique = list(dict.fromkeys(configurations))
    return [GridRun(attention, options, seed) for attention, options in unique for seed in seeds]


def read_grid_file(path: Path) -> dict[str, Any]:
    """A grid file's ``attention`` (list), ``vary`` (``{"ATTENTION.OPTION": [values]}``) and ``seeds`` (list).

    JSON, or YAML for ``.yaml``/``.yml`` files; every key is optional.

    Raises:
        ValueError: an unreadable file, an unknown key or a value of the wrong type.
    """
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            # Deferred: PyYAML is an optional dependency that only YAML grid files need.
            import yaml

            content = yaml.safe_load(text)
        else:
            content = json.loads(text)
    except ImportError as error:
        raise ValueError(
            f"{path}: reading YAML needs PyYAML (pip install pyyaml), or write the grid as JSON"
        ) from error
    except Exception as error:  # json.JSONDecodeError or yaml.YAMLError: both a malformed file
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {first_line}") from error
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a mapping with keys attention, vary, seeds; got {type(content).__name__}")
    unknown = sorted(set(content) - {"attention", "vary", "seeds"})
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; expected attention, vary, seeds")
    attention, vary, seeds = content.get("attention", []), content.get("vary", {}), content.get("seeds", [])
    if not isinstance(attention, list) or not all(isinstance(a, str) for a in attention):
        raise ValueError(f"{path}: attention must be a list of names, got {attention!r}")
    if not isinstance(vary, dict) or not all(isinstance(v, list) for v in vary.values()):
        raise ValueError(f"{path}: vary must map ATTENTION.OPTION to a list of values, got {vary!r}")
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"{path}: seeds must be a list of integers, got {seeds!r}")
    return {"attention": attention, "vary": vary, "seeds": seeds}


# --- running ----------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _run_record(run: GridRun, common: list[str]) -> dict[str, Any]:
    return {
        "configuration": run.configuration,
        "attention": run.attention,
        "options": dict(run.options),
        "seed": run.seed,
        "train_arguments": [*common, *run.train_arguments()],
    }


def _conflicting_runs(runs: list[GridRun], output: Path, common: list[str]) -> list[str]:
    """Folders that hold a run started with other train options (reusing them would mix settings)."""
    conflicts = []
    for run in runs:
        stored = _read_json(output / run.folder / RUN_FILE)
        if stored is not None and stored.get("train_arguments") != _run_record(run, common)["train_arguments"]:
            conflicts.append(str(output / run.folder))
    return conflicts


def _train(run: GridRun, folder: Path, common: list[str], threads: int | None) -> int:
    """Run the train command for ``run`` in ``folder`` (resuming its checkpoint if any); its exit status."""
    arguments = [*common, *run.train_arguments(), "--output", str(folder)]
    if (folder / LAST_CHECKPOINT).is_file():
        arguments.append("--resume")
    atomic_write_json(_run_record(run, common), folder / RUN_FILE)
    environment = dict(os.environ)
    if threads is not None:
        arguments += ["--threads", str(threads)]
        environment["OMP_NUM_THREADS"] = str(threads)  # also the threads of libraries started before torch
    with open(folder / "train.log", "ab") as log:
        return subprocess.run(
            [sys.executable, "-c", _TRAIN_COMMAND, *arguments], stdout=log, stderr=subprocess.STDOUT, env=environment
        ).returncode


def run_grid(runs: list[GridRun], output: Path, common: list[str], *, threads: int | None) -> list[str]:
    """Train every run of ``runs`` that has not finished; returns the folders of the runs that failed."""
    failed = []
    for index, run in enumerate(runs, start=1):
        folder = output / run.folder
        prefix = f"[{index}/{len(runs)}] {run.folder}:"
        if (folder / METRICS_FILE).is_file():
            print(f"{prefix} finished earlier, reused", flush=True)
            continue
        resuming = (folder / LAST_CHECKPOINT).is_file()
        print(f"{prefix} {'resuming' if resuming else 'training'} (log: {folder / 'train.log'})", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        status = _train(run, folder, common, threads)
        if status != 0 or not (folder / METRICS_FILE).is_file():
            print(f"{prefix} failed with exit status {status}, see {folder / 'train.log'}", flush=True)
            failed.append(str(folder))
    return failed


# --- the report -------------------------------------------------------------------------------------------

_CSV_COLUMNS = (
    "configuration",
    "attention",
    "options",
    "seed",
    "val_top1",
    "val_top5",
    "epochs",
    "seconds",
    "train_clips_per_second",
    "peak_memory_mb",
    "parameters",
    "gmacs",
    "folder",
)


def collect_results(output: Path) -> list[dict[str, Any]]:
    """One row per finished run under ``output`` (a folder holding ``run.json`` and ``metrics.json``)."""
    rows = []
    for folder in sorted(p for p in output.iterdir() if p.is_dir()) if output.is_dir() else []:
        record, metrics = _read_json(folder / RUN_FILE), _read_json(folder / METRICS_FILE)
        if record is None or metrics is None:
            continue
        rows.append(
            {
                "configuration": record["configuration"],
                "attention": record["attention"],
                "options": " ".join(f"{k}={v}" for k, v in record["options"].items()),
                "seed": record["seed"],
                **{key: metrics.get(key) for key in _CSV_COLUMNS[4:-1]},
                "folder": folder.name,
            }
        )
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration (in order of first appearance, the baseline first): the statistics of ``results.md``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (r["configuration"] != BASELINE, r["seed"])):
        groups.setdefault(row["configuration"], []).append(row)
    baseline = [r["val_top1"] for r in groups.get(BASELINE, [])]
    summary = []
    for configuration, members in groups.items():
        top1, top5 = [r["val_top1"] for r in members], [r["val_top5"] for r in members]
        costs = {
            key: _mean(values) if (values := [r[key] for r in members if r[key] is not None]) else None
            for key in ("parameters", "gmacs", "train_clips_per_second", "peak_memory_mb")
        }
        summary.append(
            {
                "configuration": configuration,
                "runs": len(members),
                "top1": (_mean(top1), _std(top1)),
                "top5": (_mean(top5), _std(top5)),
                "versus_baseline": None if configuration == BASELINE else welch_interval(top1, baseline),
                **costs,
            }
        )
    return summary


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _optional(value: float | None, scale: float, digits: int) -> str:
    return "n/a" if value is None else f"{value / scale:.{digits}f}"


def markdown_report(summary: list[dict[str, Any]], *, runs_total: int) -> str:
    """``results.md``: one table row per configuration, then how to read it."""
    lines = [
        "| configuration | seeds | top-1 (%) | top-5 (%) | top-1 vs none (95% CI) | params (M) | GFLOPs | "
        "clips/s | peak memory (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in summary:
        difference = entry["versus_baseline"]
        if entry["configuration"] == BASELINE:
            versus = "baseline"
        elif difference is None:
            versus = "n/a (needs 2+ seeds of both)"
        else:
            versus = f"{100 * difference[0]:+.1f} [{100 * difference[1]:+.1f}, {100 * difference[2]:+.1f}]"
        lines.append(
            f"| {entry['configuration']} | {entry['runs']} "
            f"| {_percent(entry['top1'][0])} ± {_percent(entry['top1'][1])} "
            f"| {_percent(entry['top5'][0])} ± {_percent(entry['top5'][1])} | {versus} "
            f"| {_optional(entry['parameters'], 1e6, 3)} | {_optional(entry['gmacs'], 1, 3)} "
            f"| {_optional(entry['train_clips_per_second'], 1, 1)} | {_optional(entry['peak_memory_mb'], 1, 0)} |"
        )
    finished = sum(entry["runs"] for entry in summary)
    lines += [
        "",
        f"{finished} finished runs" + (f" of {runs_total} in the grid." if runs_total else "."),
        "Top-1 and top-5: video-level validation accuracy, mean ± sample standard deviation over seeds. "
        "top-1 vs none: difference of the mean top-1 to the configuration without attention, in points, with "
        "a 95% Welch t interval; an interval that contains 0 shows no difference. GFLOPs: multiply-accumulates "
        "of one clip. clips/s: training throughput; peak memory: CUDA allocated on a GPU, resident set size "
        "on the CPU.",
    ]
    return "\n".join(lines) + "\n"


def csv_report(rows: list[dict[str, Any]]) -> str:
    """``results.csv``: one row per finished run."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def plot_results(summary: list[dict[str, Any]], path: Path) -> Path:
    """``results.png``: top-1 per configuration with ± std error bars, and top-1 against GFLOPs."""
    plt = pyplot()
    labels = [entry["configuration"] for entry in summary]
    means = [100 * entry["top1"][0] for entry in summary]
    stds = [100 * entry["top1"][1] for entry in summary]
    figure, (bars, cost) = plt.subplots(1, 2, figsize=(12, 4.5))
    bars.bar(range(len(labels)), means, yerr=stds, capsize=4, color="tab:blue", alpha=0.8)
    bars.set_xticks(range(len(labels)))
    bars.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    bars.set(title="Video-level top-1 (mean ± std over seeds)", ylabel="top-1 (%)")
    for entry, mean, std in zip(summary, means, stds):
        if entry["gmacs"] is not None:
            cost.errorbar(entry["gmacs"], mean, yerr=std, fmt="o", capsize=4)
            cost.annotate(entry["configuration"], (entry["gmacs"], mean), fontsize=7, xytext=(4, 4),
                          textcoords="offset points")  # fmt: skip
    cost.set(title="Top-1 against cost", xlabel="GFLOPs per clip (multiply-accumulates)", ylabel="top-1 (%)")
    for axes in (bars, cost):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return save_png(figure, path)


def write_report(output: Path, *, runs_total: int = 0) -> list[dict[str, Any]]:
    """Write ``results.csv``, ``results.md`` and ``results.png`` under ``output`` from its finished runs."""
    rows = collect_results(output)
    summary = summarise(rows)
    atomic_write(output / "results.csv", lambda file: file.write(csv_report(rows).encode("utf-8")))
    report = markdown_report(summary, runs_total=runs_total)
    atomic_write(output / "results.md", lambda file: file.write(report.encode("utf-8")))
    if summary:
        plot_results(summary, output / "results.png")
    return summary


# --- the command line -------------------------------------------------------------------------------------


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
        "--grid",
        type=Path,
        metavar="FILE",
        help='JSON or YAML file with the grid: {"attention": [...], "vary": {"cbam.kernel_size": [3, 7]}, '
        '"seeds": [...]}, added to the command line\'s',
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
) -> tuple[list[str], dict[str, list[Any]], list[int]]:
    """(attentions, {ATTENTION.OPTION: values}, seeds) from the command line and the --grid file, checked."""
    from_file = {"attention": [], "vary": {}, "seeds": []}
    if args.grid is not None:
        try:
            from_file = read_grid_file(args.grid)
        except ValueError as error:
            parser.error(f"--grid {error}")
    vary = dict(from_file["vary"])
    for key, *values in args.vary or []:
        vary[key] = vary.get(key, []) + [literal_or_text(value) for value in values]
    for key, values in vary.items():
        attention, dot, option = key.partition(".")
        problem = f"expected ATTENTION.OPTION, e.g. cbam.gate_order, got {key!r}" if not dot else None
        problem = problem or _check_vary(attention, option, values)
        if problem:
            parser.error(f"--vary {problem}")
    attentions = list(dict.fromkeys([*(args.attention or []), *from_file["attention"]]))
    if not attentions and not vary:
        attentions = list(attention_choices())
    unknown = [name for name in attentions if name not in attention_choices()]
    if unknown:
        parser.error(f"--attention {unknown[0]!r} is not known; choose from {', '.join(attention_choices())}")
    seeds = list(dict.fromkeys([*(args.seeds or []), *from_file["seeds"]])) or [0, 1, 2]
    if any(seed < 0 for seed in seeds):
        parser.error(f"--seeds must be 0 or more, got {seeds}")
    return attentions, vary, seeds


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


def ablate_main(argv: Sequence[str] | None = None) -> int:
    """``cbam3d ablate``: exit status 0 when every run finished, 1 when some failed, 2 on bad input."""
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
    runs = expand_grid(*_grid_from_arguments(parser, args))
    conflicts = _conflicting_runs(runs, args.output, common)
    if conflicts:
        parser.error(f"{conflicts[0]} holds a run started with other train options; use another --output or delete it")
    failed = run_grid(runs, args.output, common, threads=args.threads)
    write_report(args.output, runs_total=len(runs))
    print(f"results: {args.output / 'results.md'}, {args.output / 'results.csv'}, {args.output / 'results.png'}")
    if failed:
        print(f"{len(failed)} of {len(runs)} runs failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
