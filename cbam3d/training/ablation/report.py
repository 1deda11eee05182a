"""The report of a grid, rebuilt from its finished runs: ``results.csv`` (one row per run), ``results.md`` (per
configuration: mean and standard deviation over seeds, the difference in top-1 to the baseline with a 95 % Welch t
interval, and the costs) and ``results.png``. The baseline is attention ``none`` when the grid trains it, else the
grid's first configuration (e.g. the first ``--recipe``); each run's ``run.json`` names it (:func:`read_baseline`).

What a report shows is a :class:`ReportLayout` (the ablation's is :func:`ablation_layout` of its baseline), so
that another grid of attention configurations x seeds (docs/examples/brain_tissue_segmentation.py: Dice instead
of top-1) gets the same statistics and tables through :func:`write_tables`."""

from __future__ import annotations

import dataclasses
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from scipy import stats

from cbam3d.inference.plots import pyplot, save_png
from cbam3d.utils.atomic import atomic_write
from cbam3d.utils.tables import csv_text

from .runner import METRICS_FILE, RUN_FILE, read_json

__all__ = [
    "ABLATION_LAYOUT",
    "BASELINE",
    "Column",
    "ReportLayout",
    "ablation_layout",
    "collect_results",
    "csv_report",
    "markdown_report",
    "plot_results",
    "read_baseline",
    "summarise",
    "welch_interval",
    "write_report",
    "write_tables",
]

BASELINE = "none"
_CSV_COLUMNS = (
    "configuration",
    "attention",
    "options",
    "recipe",
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
_COST_KEYS = ("epochs", "seconds", "train_clips_per_second", "peak_memory_mb", "parameters", "gmacs")


class Column(NamedTuple):
    """One column of a report: the rows' ``key``, its short ``name`` and ``unit``, and a value shown divided by
    ``scale`` with ``digits`` decimals (a fraction in percent: ``scale=0.01``)."""

    key: str
    name: str
    unit: str = ""
    scale: float = 1.0
    digits: int = 1

    @property
    def heading(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name


def _the_baseline(configuration: str) -> str:
    return BASELINE


@dataclass(frozen=True)
class ReportLayout:
    """What a report shows. ``scores`` are shown as mean ± std over seeds, the first one also as its difference
    to the configuration's baseline (``baseline_of(configuration)``) with a 95 % Welch interval; ``costs`` as
    means; ``plot_cost`` is the x axis of the second panel of ``results.png``; ``reading`` the paragraph under
    the table."""

    scores: tuple[Column, ...]
    costs: tuple[Column, ...]
    plot_cost: Column
    plot_cost_label: str
    score_title: str
    reading: str
    csv_columns: tuple[str, ...]
    baseline_name: str = BASELINE
    baseline_of: Callable[[str], str] = _the_baseline


_GFLOPS = Column("gmacs", "GFLOPs", digits=3)
ABLATION_LAYOUT = ReportLayout(
    scores=(Column("val_top1", "top-1", "%", 0.01), Column("val_top5", "top-5", "%", 0.01)),
    costs=(
        Column("parameters", "params", "M", 1e6, 3),
        _GFLOPS,
        Column("train_clips_per_second", "clips/s"),
        Column("peak_memory_mb", "peak memory", "MiB", digits=0),
    ),
    plot_cost=_GFLOPS,
    plot_cost_label="GFLOPs per clip (multiply-accumulates)",
    score_title="Video-level top-1",
    reading="Top-1 and top-5: video-level validation accuracy, mean ± sample standard deviation over seeds. "
    "top-1 vs none: difference of the mean top-1 to the configuration without attention, in points, with "
    "a 95% Welch t interval; an interval that contains 0 shows no difference. GFLOPs: multiply-accumulates "
    "of one clip. clips/s: training throughput; peak memory: CUDA allocated on a GPU, resident set size "
    "on the CPU.",
    csv_columns=_CSV_COLUMNS,
)
"""The layout of a grid whose baseline is attention ``none``; :func:`ablation_layout` gives any other's."""


def ablation_layout(baseline: str = BASELINE) -> ReportLayout:
    """:data:`ABLATION_LAYOUT` comparing every configuration with the configuration ``baseline``."""
    if baseline == BASELINE:
        return ABLATION_LAYOUT
    reading = ABLATION_LAYOUT.reading.replace(
        "top-1 vs none: difference of the mean top-1 to the configuration without attention",
        f"top-1 vs {baseline}: difference of the mean top-1 to the baseline configuration (the grid's first: it "
        "has no attention none)",
    )
    return dataclasses.replace(
        ABLATION_LAYOUT, reading=reading, baseline_name=baseline, baseline_of=lambda configuration: baseline
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
    if not isinstance(record.get("recipe"), str | None):
        raise ValueError(f"{RUN_FILE}: recipe is not a name")
    costs = {key: metrics.get(key) for key in _COST_KEYS}
    wrong = [key for key, value in costs.items() if value is not None and not _is_number(value)]
    if wrong:
        raise ValueError(f"{METRICS_FILE}: {wrong[0]} is not a number")
    return {
        "configuration": record["configuration"],
        "attention": record["attention"],
        "options": " ".join(f"{k}={v}" for k, v in record["options"].items()),
        "recipe": record.get("recipe"),
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


def read_baseline(output: Path) -> str:
    """The grid's baseline configuration, as its runs' ``run.json`` name it (``none`` for older grids)."""
    for folder in sorted(p for p in output.iterdir() if p.is_dir()) if output.is_dir() else []:
        record = read_json(folder / RUN_FILE)
        if isinstance(record, dict) and isinstance(record.get("baseline"), str) and record["baseline"]:
            return record["baseline"]
    return BASELINE


def summarise(rows: list[dict[str, Any]], layout: ReportLayout = ABLATION_LAYOUT) -> list[dict[str, Any]]:
    """Per configuration, the statistics of ``results.md``: ``{"configuration", "runs", "scores": {key: (mean,
    std)}, "versus_baseline": (difference, low, high) | None, <cost key>: mean | None, ...}``.

    Configurations are grouped by baseline (``layout.baseline_of``), the baseline first in its group, the
    others in order of first appearance.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: _order(r["configuration"], layout) + (r["seed"],)):
        groups.setdefault(row["configuration"], []).append(row)
    score = layout.scores[0].key
    summary = []
    for configuration, members in groups.items():
        baseline = layout.baseline_of(configuration)
        costs = {
            column.key: statistics.fmean(values)
            if (values := [r[column.key] for r in members if r[column.key] is not None])
            else None
            for column in layout.costs
        }
        scores = {}
        for column in layout.scores:
            values = [r[column.key] for r in members]
            scores[column.key] = (statistics.fmean(values), _std(values))
        summary.append(
            {
                "configuration": configuration,
                "runs": len(members),
                "scores": scores,
                "versus_baseline": None
                if configuration == baseline
                else welch_interval([r[score] for r in members], [r[score] for r in groups.get(baseline, [])]),
                **costs,
            }
        )
    return summary


def _order(configuration: str, layout: ReportLayout) -> tuple[str, bool]:
    baseline = layout.baseline_of(configuration)
    return baseline, configuration != baseline


def _optional(value: float | None, column: Column) -> str:
    return "n/a" if value is None else f"{value / column.scale:.{column.digits}f}"


def markdown_report(summary: list[dict[str, Any]], *, runs_total: int, layout: ReportLayout = ABLATION_LAYOUT) -> str:
    """``results.md``: one table row per configuration, then how to read it."""
    score = layout.scores[0]
    headings = [
        "configuration",
        "seeds",
        *(column.heading for column in layout.scores),
        f"{score.name} vs {layout.baseline_name} (95% CI)",
        *(column.heading for column in layout.costs),
    ]
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    for entry in summary:
        difference = entry["versus_baseline"]
        if entry["configuration"] == layout.baseline_of(entry["configuration"]):
            versus = "baseline"
        elif difference is None:
            versus = "n/a (needs 2+ seeds of both)"
        else:
            low, high = (f"{value / score.scale:+.{score.digits}f}" for value in difference[1:])
            versus = f"{difference[0] / score.scale:+.{score.digits}f} [{low}, {high}]"
        cells = [
            entry["configuration"],
            str(entry["runs"]),
            *(
                f"{_optional(entry['scores'][c.key][0], c)} ± {_optional(entry['scores'][c.key][1], c)}"
                for c in layout.scores
            ),
            versus,
            *(_optional(entry[column.key], column) for column in layout.costs),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    finished = sum(entry["runs"] for entry in summary)
    lines += [
        "",
        f"{finished} finished runs" + (f" of {runs_total} in the grid." if runs_total else "."),
        layout.reading,
    ]
    return "\n".join(lines) + "\n"


def csv_report(rows: list[dict[str, Any]], columns: Sequence[str] = _CSV_COLUMNS) -> str:
    """``results.csv``: one row per finished run, spreadsheet-safe (:func:`~cbam3d.utils.tables.csv_text`)."""
    return csv_text(columns, ([row.get(column) for column in columns] for row in rows))


def _plot_differences(axes: Any, summary: list[dict[str, Any]], layout: ReportLayout) -> None:
    """Forest plot: each configuration's difference in the first score to its baseline with its 95 % interval,
    one row each, the labels on the left (horizontal, so long labels stay readable)."""
    score = layout.scores[0]
    compared = [entry for entry in summary if entry["versus_baseline"] is not None]
    rows = range(len(compared))
    differences = [entry["versus_baseline"][0] / score.scale for entry in compared]
    low = [d - entry["versus_baseline"][1] / score.scale for d, entry in zip(differences, compared)]
    high = [entry["versus_baseline"][2] / score.scale - d for d, entry in zip(differences, compared)]
    axes.errorbar(differences, rows, xerr=[low, high], fmt="o", capsize=4, color="tab:blue")
    axes.axvline(0.0, color="black", linewidth=1)
    axes.set_yticks(list(rows))
    axes.set_yticklabels([entry["configuration"] for entry in compared], fontsize=8)
    axes.set(title=f"{score.name} difference to {layout.baseline_name} (95% interval)", xlabel="points")
    if compared:
        axes.set_ylim(len(compared) - 0.5, -0.5)  # the grid's order from the top
    else:
        axes.text(0.5, 0.5, "needs 2+ seeds of the baseline and another configuration", ha="center",
                  transform=axes.transAxes, fontsize=8)  # fmt: skip


def plot_results(summary: list[dict[str, Any]], path: Path, layout: ReportLayout = ABLATION_LAYOUT) -> Path:
    """``results.png``: the first score per configuration with ± std error bars, that score against the
    layout's ``plot_cost``, and the forest plot of the differences to the baseline."""
    plt = pyplot()
    score, cost_column = layout.scores[0], layout.plot_cost
    labels = [entry["configuration"] for entry in summary]
    means = [entry["scores"][score.key][0] / score.scale for entry in summary]
    stds = [entry["scores"][score.key][1] / score.scale for entry in summary]
    # the forest plot gets the full width below, one row per configuration, so long labels stay readable
    forest_height = 1.2 + 0.35 * len(summary)
    figure, axes = plt.subplot_mosaic(
        [["bars", "cost"], ["forest", "forest"]],
        figsize=(12, 4.5 + forest_height),
        height_ratios=[4.5, forest_height],
    )
    bars, cost, forest = axes["bars"], axes["cost"], axes["forest"]
    bars.bar(range(len(labels)), means, yerr=stds, capsize=4, color="tab:blue", alpha=0.8)
    bars.set_xticks(range(len(labels)))
    bars.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    bars.set(title=f"{layout.score_title} (mean ± std over seeds)", ylabel=score.heading)
    for entry, mean, std in zip(summary, means, stds):
        if entry[cost_column.key] is not None:
            x = entry[cost_column.key] / cost_column.scale
            cost.errorbar(x, mean, yerr=std, fmt="o", capsize=4)
            cost.annotate(entry["configuration"], (x, mean), fontsize=7, xytext=(4, 4), textcoords="offset points")
    cost.set(title=f"{score.name} against cost", xlabel=layout.plot_cost_label, ylabel=score.heading)
    _plot_differences(forest, summary, layout)
    for panel in (bars, cost, forest):
        panel.grid(alpha=0.3)
    figure.tight_layout()
    return save_png(figure, path)


def write_tables(
    output: Path, rows: list[dict[str, Any]], *, layout: ReportLayout, runs_total: int = 0
) -> list[dict[str, Any]]:
    """Write ``results.csv``, ``results.md`` and ``results.png`` under ``output`` from ``rows`` (one per finished
    run: ``configuration``, ``seed`` and the layout's keys); the summary they show."""
    summary = summarise(rows, layout)
    columns = layout.csv_columns
    atomic_write(output / "results.csv", lambda file: file.write(csv_report(rows, columns).encode("utf-8")))
    report = markdown_report(summary, runs_total=runs_total, layout=layout)
    atomic_write(output / "results.md", lambda file: file.write(report.encode("utf-8")))
    if summary:
        plot_results(summary, output / "results.png", layout)
    return summary


def write_report(output: Path, *, runs_total: int = 0) -> list[dict[str, Any]]:
    """Write ``results.csv``, ``results.md`` and ``results.png`` under ``output`` from its finished runs, compared
    with the baseline their ``run.json`` name."""
    layout = ablation_layout(read_baseline(output))
    return write_tables(output, collect_results(output), layout=layout, runs_total=runs_total)
