"""The benchmark's output: markdown tables of the measured rows, JSON, and writing both atomically."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cbam3d.utils.atomic import atomic_write

from .loading import LoaderResult
from .measure import Result

__all__ = ["loading_table", "markdown_table", "peer_table", "rows_of", "to_json", "write_reports"]


def _format(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def rows_of(table: str) -> str:
    """A markdown table without its header and separator lines: the rows printed as each case is measured."""
    return table.split("\n", 2)[2]


def markdown_table(results: Sequence[Result]) -> str:
    """One row per variant of the block and network cases: times, saved memory and the ratios against the
    case's baseline."""
    header = (
        "| case | variant | input | fwd ms | fwd+bwd ms | speed-up (fwd+bwd) | saved for bwd "
        "| vs baseline memory | peak MB |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|"
    )
    rows = [header]
    for r in results:
        label = "vs_naive" if "vs_naive:saved" in r.ratios else "vs_plain"
        speedup = r.ratios.get(f"{label}:train_speedup")
        saved = f"{r.saved_ratio:.2f}x input" if label == "vs_naive" else f"{r.saved_mb:.0f} MB"
        memory = r.ratios.get(f"{label}:saved")
        if memory is None:
            memory_text = "-"
        else:
            memory_text = f"{memory:.2f}x naive" if label == "vs_naive" else f"{(memory - 1) * 100:+.1f}% vs plain"
        rows.append(
            f"| {r.case} | {r.variant} | {'x'.join(map(str, r.shape))} | {_format(r.forward_ms, '{:.1f}')} | "
            f"{_format(r.train_ms, '{:.1f}')} | {_format(speedup, '{:.2f}x')} | {saved} | {memory_text} | "
            f"{_format(r.peak_mb, '{:.0f}')} |"
        )
    return "\n".join(rows)


def peer_table(results: Sequence[Result]) -> str:
    """The peers' and training steps' rows: times, the fwd+bwd speed-up over the case's baseline and its
    inverse (the time relative to the baseline), and the memory kept for backward as a multiple of the input."""
    rows = [
        "| case | variant | input | fwd ms | fwd+bwd ms | speed-up (fwd+bwd) | time vs baseline | saved for bwd |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        label, speedup = next(
            ((key.split(":")[0], value) for key, value in r.ratios.items() if key.endswith(":train_speedup")),
            ("", None),
        )
        rows.append(
            f"| {r.case} | {r.variant} | {'x'.join(map(str, r.shape))} | {_format(r.forward_ms, '{:.1f}')} | "
            f"{_format(r.train_ms, '{:.1f}')} | {_format(speedup, '{:.2f}x ' + label)} | "
            f"{_format(speedup and 1 / speedup, '{:.2f}x')} | {r.saved_ratio:.2f}x input |"
        )
    return "\n".join(rows)


def loading_table(results: Sequence[LoaderResult]) -> str:
    """One row per loader case: its clip, clips per second and milliseconds per clip by the wall clock and by
    the process's CPU time (one worker process, one torch thread)."""
    rows = [
        "| loader | clip (T x H x W / rate) | clips/s | ms per clip | clips per CPU s | CPU ms per clip |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        clip = f"{r.settings['frames']}x{r.settings['size']}x{r.settings['size']} / {r.settings['sampling_rate']}"
        rows.append(
            f"| {r.loader} | {clip} | {r.clips_per_s:.1f} | {r.ms_per_clip:.1f} | {r.clips_per_cpu_s:.1f} | "
            f"{r.cpu_ms_per_clip:.1f} |"
        )
    return "\n".join(rows)


def to_json(results: Sequence[Result | LoaderResult], settings: dict[str, Any]) -> str:
    """``{"settings": settings, "results": [one object per result]}``, indented (paths as strings)."""
    return json.dumps({"settings": settings, "results": [asdict(r) for r in results]}, indent=2, default=str)


def write_reports(
    table: str,
    results: Sequence[Result | LoaderResult],
    settings: dict[str, Any],
    *,
    markdown: Path | None,
    json_path: Path | None,
) -> None:
    """Write, atomically, ``table`` under a line of the run's ``settings`` to ``markdown`` and
    :func:`to_json` to ``json_path``, each where given."""
    if markdown is not None:
        text = f"Settings: `{json.dumps(settings, default=str)}`\n\n{table}\n"
        atomic_write(markdown, lambda file: file.write(text.encode("utf-8")))
    if json_path is not None:
        text = to_json(results, settings)
        atomic_write(json_path, lambda file: file.write(text.encode("utf-8")))
