"""Running a grid: each run is the train command itself in a subprocess, in its own folder ``OUTPUT/<run>``.

Resumable: a run whose ``metrics.json`` exists is reused, one with a checkpoint but no metrics is resumed
(``--resume``), any other is started again. Each folder's ``run.json`` records the run and its train options,
so that a folder holding a run started with other options is not mixed into the grid.

A training process never outlives the grid's: a SIGTERM to the grid is passed on to it, and on Linux the kernel
sends it SIGTERM when the grid's process dies in any way (``prctl(PR_SET_PDEATHSIG)``, set in the child before
it runs the train command; a signal from the kernel needs no polling thread in the train command, which does
not know it is a child). Each training process also holds its run folder's lock, so that a folder is never
trained by two at once.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from cbam3d.utils.atomic import atomic_write_json

from .. import run_folder
from .grid import GridRun

__all__ = ["LAST_CHECKPOINT", "METRICS_FILE", "RUN_FILE", "conflicting_runs", "grid_baseline", "read_json", "run_grid"]

RUN_FILE = "run.json"
METRICS_FILE = run_folder.METRICS_FILE
LAST_CHECKPOINT = Path(run_folder.CHECKPOINT_DIR) / run_folder.LAST_CHECKPOINT
# The train command in a fresh interpreter: the same training code as `cbam3d train`.
_TRAIN_COMMAND = "import sys; from cbam3d.training.cli import train_main; sys.exit(train_main(sys.argv[1:]))"


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or unreadable (a run killed while writing)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
        return None


def _train_arguments(run: GridRun, common: list[str]) -> list[str]:
    """The train command's arguments for ``run``, as recorded in its run file and compared on a rerun."""
    return [*common, *run.train_arguments()]


def _run_record(run: GridRun, common: list[str], baseline: str) -> dict[str, Any]:
    return {
        "configuration": run.configuration,
        "baseline": baseline,
        "attention": run.attention,
        "options": dict(run.options),
        "seed": run.seed,
        "train_arguments": _train_arguments(run, common),
        "recipe": run.recipe.name if run.recipe is not None else None,
    }


def grid_baseline(runs: list[GridRun]) -> str:
    """The configuration the others are compared with: the first with attention ``none``, else the first."""
    return next((run.configuration for run in runs if run.attention == "none"), runs[0].configuration)


def conflicting_runs(runs: list[GridRun], output: Path, common: list[str]) -> list[str]:
    """Folders that hold a run started with other train options (reusing them would mix settings)."""
    conflicts = []
    for run in runs:
        stored = read_json(output / run.folder / RUN_FILE)
        if stored is not None and stored.get("train_arguments") != _train_arguments(run, common):
            conflicts.append(str(output / run.folder))
    return conflicts


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# How long a training process interrupted with the grid (Ctrl-C reaches both) may take to shut down.
_SHUTDOWN_SECONDS = 30


def _die_with_this_process() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send the child SIGTERM when this process dies (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _run_child(command: list[str], *, log: Any, environment: dict[str, str]) -> int:
    """Run ``command`` to its end and return its exit status; a SIGTERM to this process is passed on to it
    (then this process exits with 143 once it has ended), Ctrl-C waits for it to shut down (then re-raised)."""
    child = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=environment, preexec_fn=_die_with_this_process()
    )
    terminated = []

    def forward(signum: int, frame: FrameType | None) -> None:
        terminated.append(signum)
        child.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        status = child.wait()
    except KeyboardInterrupt:
        try:
            child.wait(timeout=_SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            child.terminate()
            child.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if terminated:
        raise SystemExit(128 + signal.SIGTERM)
    return status


def _train(run: GridRun, folder: Path, common: list[str], threads: int | None, baseline: str) -> int:
    """Run the train command for ``run`` in ``folder`` (resuming its checkpoint if any); its exit status."""
    arguments = [*_train_arguments(run, common), "--output", str(folder)]
    if (folder / LAST_CHECKPOINT).is_file():
        arguments.append("--resume")
    atomic_write_json(_run_record(run, common, baseline), folder / RUN_FILE)
    environment = dict(os.environ)
    if threads is not None:
        arguments += ["--threads", str(threads)]
        environment["OMP_NUM_THREADS"] = str(threads)  # also the threads of libraries started before torch
    with open(folder / "train.log", "ab") as log:
        return _run_child([sys.executable, "-c", _TRAIN_COMMAND, *arguments], log=log, environment=environment)


def run_grid(runs: list[GridRun], output: Path, common: list[str], *, threads: int | None) -> list[str]:
    """Train every run of ``runs`` that has not finished, with the train options ``common`` besides its own.

    The report compares every configuration with the grid's baseline: attention ``none`` (with the first
    recipe) when the grid has it, else the first configuration; each ``run.json`` records which.

    Returns:
        The folders of the runs that failed.
    """
    failed = []
    baseline = grid_baseline(runs)
    for index, run in enumerate(runs, start=1):
        folder = output / run.folder
        prefix = f"[{index}/{len(runs)}] {run.folder}:"
        if (folder / METRICS_FILE).is_file():
            print(f"{prefix} finished earlier, reused", flush=True)
            continue
        resuming = (folder / LAST_CHECKPOINT).is_file()
        print(f"{prefix} {'resuming' if resuming else 'training'} (log: {folder / 'train.log'})", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        status = _train(run, folder, common, threads, baseline)
        if status != 0 or not (folder / METRICS_FILE).is_file():
            print(f"{prefix} failed with exit status {status}, see {folder / 'train.log'}", flush=True)
            failed.append(str(folder))
    return failed
