"""Processes killed from outside: a grid's training process dies with the grid (SIGKILL or SIGTERM of the grid),
and a tiny training killed with SIGKILL at random moments, 20 times, resumes to a consistent folder."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux's")

# A stand-in for the grid's process: it runs one child through the grid's runner, the child writing its pid.
_GRID_PROCESS = """
import os, sys
from cbam3d.training.ablation.runner import _run_child
child = ["sh", "-c", 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec sleep 600', sys.argv[1]]
with open(os.devnull, "wb") as log:
    print(_run_child(child, log=log, environment=dict(os.environ)))
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def grid_with_a_child(tmp_path):
    """(the grid's process, the pid of its child): the child started and running."""
    pid_file = tmp_path / "child.pid"
    grid = subprocess.Popen([sys.executable, "-c", _GRID_PROCESS, str(pid_file)], stdout=subprocess.PIPE, text=True)
    assert _wait_for(pid_file.is_file, 120), "the child did not start"
    child = int(pid_file.read_text())
    yield grid, child
    grid.kill()
    grid.wait()
    if _alive(child):
        os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGTERM])
def test_the_training_process_of_a_grid_dies_with_the_grid(grid_with_a_child, kill):
    grid, child = grid_with_a_child
    assert _alive(child)
    grid.send_signal(kill)
    assert grid.wait(timeout=60) == (-signal.SIGKILL if kill == signal.SIGKILL else 128 + signal.SIGTERM)
    assert _wait_for(lambda: not _alive(child), 10), f"the child {child} outlived the grid ({kill.name})"


_TRAIN = "import sys; from cbam3d.training.cli import train_main; sys.exit(train_main(sys.argv[1:]))"


def _best_named_by(last: Path) -> Path:
    states = torch.load(last, weights_only=False)["callbacks"]
    return Path(next(state["best_model_path"] for key, state in states.items() if "'val_top1'" in key))


@pytest.mark.slow
def test_a_training_killed_20_times_at_random_resumes_to_a_loadable_last_an_existing_best_and_no_temporary(
    tmp_path, tiny_trained_run, tiny_run
):
    output, rng = tmp_path / "run", random.Random(0)
    start = [*tiny_run, "--data", str(tiny_trained_run["data"]), "--output", str(output), "--epochs", "1000"]
    resume = ["--output", str(output), "--resume", "--num-workers", "0", "--threads", "1"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    last = output / "checkpoints" / "last.ckpt"
    log = tmp_path / "train.log"

    def launch(argv):
        with open(log, "wb") as stderr:
            return subprocess.Popen(
                [sys.executable, "-c", _TRAIN, *argv], stdout=subprocess.DEVNULL, stderr=stderr, env=environment
            )

    def kill(process):
        assert process.poll() is None, f"the run ended before it was killed: {log.read_text()[-2000:]}"
        process.send_signal(signal.SIGKILL)
        process.wait()

    # The first kill comes soon after the first checkpoint; its time sets the window of the others, so that on a
    # machine of any speed they land anywhere from the start-up to a few epochs in.
    launched, first = time.monotonic(), launch(start)
    assert _wait_for(last.is_file, 600), f"no checkpoint in 10 minutes: {log.read_text()[-2000:]}"
    window = time.monotonic() - launched
    time.sleep(rng.uniform(0.0, 1.0))
    kill(first)
    assert _best_named_by(last).is_file()
    for _ in range(19):
        process = launch(resume if last.is_file() else start)
        time.sleep(rng.uniform(0.2, 1.5 * window))
        kill(process)
        if last.is_file():
            assert _best_named_by(last).is_file()
    done = torch.load(last, weights_only=False)["epoch"] + 1
    finish = subprocess.run(
        [sys.executable, "-c", _TRAIN, *resume, "--epochs", str(done + 1)], capture_output=True, text=True
    )
    assert finish.returncode == 0, finish.stderr[-2000:]
    checkpoint = torch.load(last, weights_only=False)
    assert checkpoint["epoch"] + 1 == done + 1
    best = _best_named_by(last)
    assert best.is_file() and [p.name for p in last.parent.glob("best-*.ckpt")] == [best.name]
    assert not list(output.rglob("*.tmp"))
