"""The report of a grid, rebuilt from its finished runs: ``results.csv`` (one row per run), ``results.md`` (per
configuration: mean and standard deviation over seeds, the difference in top-1 to ``none`` with a 95 % Welch t
interval, and the costs) and ``results.png``."""

from __future__ import annotations

import csv
import io
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scipy import stats

from cbam3d.inference.plots import pyplot, save_png
from cbam3d.utils.atomic import atomic_write

from .runner import METRICS_FILE, RUN_FILE, read_json

__all__ = [
    "BASELINE",
    "collect_results",
    "csv_report",
    "markdown_report",
    "plot_results",
    "summarise",
    "welch_interval",
    "write_report",
]

BASELINE = "none"
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


def welch_interval(sample: Sequence[float], baseline: Sequence[float]) -> tuple[float, float, float] | None:
    """Difference of means ``mean(sample) - mean(baseline)`` and its 95 % Welch t interval ``(diff, low, high)``.

    The half-width is Student's t 97.5 % quantile, at the Welch–Satterthwaite degrees of freedom, times the
    standard error of the difference. None when either sample has fewer than two values (no variance to
    estimate); the difference itself three times when neither sample varies.
    """
    if len(sample) < 2 or len(baseline) < 2:
        return None
    difference = statistics.fmean(sample) - statistics.fmean(baseline)
    # the squared standard errors of the two means
    errors = [statistics.variance(values) / len(values) for values in (sample, baseline)]
    if sum(errors) == 0:
        return difference, difference, difference
    degrees_of_freedom = sum(errors) ** 2 / sum(e**2 / (len(v) - 1) for e, v in zip(errors, (sample, baseline)))
    half = float(stats.t.ppf(0.975, degrees_of_freedom)) * math.sqrt(sum(errors))
    return difference, difference - half, difference + half


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1); 0 for a single value."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _result_row(folder: Path, record: Any, metrics: Any) -> dict[str, Any]:
    """The ``results.csv`` row of a finished run; ValueError (saying what is wrong) for malformed files."""
    expected = {"configuration": str, "attention": str, "options": dict, "seed": int}
    if not isinstance(record, dict) or any(not isinstance(record.get(k), t) for k, t in expected.items()):
        raise ValueError(f"{RUN_FILE} is not a run record (configuration, attention, options, seed)")
    if not isinstance(metrics, dict) or not all(_is_number(metrics.get(k)) for k in ("val_top1", "val_top5")):
        raise ValueError(f"{METRICS_FILE} lacks numbers val_top1 and val_top5")
    costs = {key: metrics.get(key) for key in _CSV_COLUMNS[6:-1]}
    wrong = [key for key, value in costs.items() if value is not None and not _is_number(value)]
    if wrong:
        raise ValueError(f"{METRICS_FILE}: {wrong[0]} is not a number")
    return {
        "configuration": record["configuration"],
        "attention": record["attention"],
        "options": " ".join(f"{k}={v}" for k, v in record["options"].items()),
        "seed": record["seed"],
        "val_top1": metrics["val_top1"],
        "val_top5": metrics["val_top5"],
        **costs,
        "folder": folder.name,
    }


def collect_results(output: Path) -> list[dict[str, Any]]:
    """One row per finished run under ``output`` (a folder holding ``run.json`` and ``metrics.json``).

    A run whose files are malformed (edited by hand, written by another version) is skipped with a warning on
    stderr naming its folder; one without both files (not finished) silently.
    """
    rows = []
    for folder in sorted(p for p in output.iterdir() if p.is_dir()) if output.is_dir() else []:
        paths = (folder / RUN_FILE, folder / METRICS_FILE)
        if not all(path.is_file() for path in paths):
            continue
        record, metrics = (read_json(path) for path in paths)
        try:
            if record is None or metrics is None:
                raise ValueError(f"{RUN_FILE if record is None else METRICS_FILE} is not readable JSON")
            rows.append(_result_row(folder, record, metrics))
        except ValueError as problem:
            print(f"warning: skipping the run in {folder}: {problem}", file=sys.stderr)
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
            key: statistics.fmean(values) if (values := [r[key] for r in members if r[key] is not None]) else None
            for key in ("parameters", "gmacs", "train_clips_per_second", "peak_memory_mb")
        }
        summary.append(
            {
                "configuration": configuration,
                "runs": len(members),
                "top1": (statistics.fmean(top1), _std(top1)),
                "top5": (statistics.fmean(top5), _std(top5)),
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
