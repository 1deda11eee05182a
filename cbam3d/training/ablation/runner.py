"""Running a grid: each run is the train command itself in a subprocess, in its own folder ``OUTPUT/<run>``.

Resumable: a run whose ``metrics.json`` exists is reused, one with a checkpoint but no metrics is resumed
(``--resume``), any other is started again. Each folder's ``run.json`` records the run and its train options,
so that a folder holding a run started with other options is not mixed into the grid.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cbam3d.utils.atomic import atomic_write_json

from .grid import GridRun

__all__ = ["LAST_CHECKPOINT", "METRICS_FILE", "RUN_FILE", "conflicting_runs", "read_json", "run_grid"]

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
# The train command in a fresh interpreter: the same training code as `cbam3d train`.
_TRAIN_COMMAND = "import sys; from cbam3d.training.cli import train_main; sys.exit(train_main(sys.argv[1:]))"


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or unreadable (a run killed while writing)."""
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


def conflicting_runs(runs: list[GridRun], output: Path, common: list[str]) -> list[str]:
    """Folders that hold a run started with other train options (reusing them would mix settings)."""
    conflicts = []
    for run in runs:
        stored = read_json(output / run.folder / RUN_FILE)
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
    """Train every run of ``runs`` that has not finished, with the train options ``common`` besides its own.

    Returns:
        The folders of the runs that failed.
    """
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
