"""The first run as a newcomer sees it: ``cbam3d train`` (here ``scripts/train.py``) with an empty cache shows
the demo set's generation, no third-party tip or dependency deprecation, our own model summary, and ends
saying where everything is and what to run next. Silencing happens in the command only: the library leaves
logging and warnings alone.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("lightning")
pytest.importorskip("av")

from cbam3d.data import DEMO_CLASSES, ensure_demo_dataset
from cbam3d.training.cli import closing_summary
from cbam3d.utils.console import command, quiet_dependencies

TRAIN_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train.py"
DEMO_TEST_PER_CLASS = 20  # the generator's default size of the test list, which train.py keeps


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_run) -> dict:
    """``scripts/train.py`` on the demo set (1 training video per class, 1 epoch) with an empty cache, writing
    to ``run/`` below its working directory."""
    base = tmp_path_factory.mktemp("first-run")
    env = {**os.environ, "CBAM3D_CACHE": str(base / "cache"), "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONWARNINGS", None)  # the command's own filters are under test
    smallest = ["--demo-videos", "1", "--epochs", "1", "--size", "16", "--batch-size", "8", "--eval-clips", "1"]
    argv = [*tiny_run, *smallest, "--output", "run"]
    result = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *argv], cwd=base, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "cache": base / "cache",
        "cwd": base,
        "metrics": json.loads((base / "run" / "metrics.json").read_text()),
    }


def test_generation_says_where_the_demo_set_is_cached_and_shows_its_progress(first_run):
    videos = len(DEMO_CLASSES) * (1 + DEMO_TEST_PER_CLASS)
    announcement = next(line for line in first_run["stderr"].splitlines() if "generating the demo data set" in line)
    assert str(first_run["cache"]) in announcement and "once" in announcement
    progress = first_run["stderr"].split(announcement, 1)[1]  # the bar comes after the announcement
    assert "demo videos:" in progress and f"{videos}/{videos}" in progress
    assert any(f"| {done}/{videos} " in progress for done in range(1, videos)), "no intermediate progress shown"


def test_output_has_no_third_party_tip_and_no_dependency_deprecation(first_run):
    output = first_run["stdout"] + first_run["stderr"]
    assert "💡" not in output and "litlogger" not in output
    assert "LeafSpec" not in output and "deprecated" not in output.lower()


def test_model_summary_gives_our_multiply_adds_instead_of_lightnings_zero_flops(first_run):
    assert "Total FLOPs" not in first_run["stdout"] + first_run["stderr"]
    summary = next(line for line in first_run["stderr"].splitlines() if line.startswith("model: "))
    assert "resnet3d-10 with cbam attention" in summary and "GMACs" in summary
    assert float(summary.split(" GMACs")[0].rsplit(" ", 1)[1]) > 0


def test_closing_summary_names_the_outputs_and_the_next_commands_with_the_best_checkpoint(first_run):
    """Paths are shown relative to the working directory the command ran in."""
    metrics = first_run["metrics"]
    best = Path(metrics["best_checkpoint"])
    assert best.is_file() and best.name.startswith("best-")
    stdout = first_run["stdout"]
    assert f"top-1 {100 * metrics['val_top1']:.1f}%, top-5 {100 * metrics['val_top5']:.1f}%" in stdout
    output = Path(metrics["output"])
    for written in (output / "metrics.json", output / "curves.png", output / "tensorboard"):
        assert written.exists() and f" {written.relative_to(first_run['cwd'])}" in stdout
    assert "tensorboard --logdir run/tensorboard" in stdout
    shown = best.relative_to(first_run["cwd"])
    assert f"(best: {shown})" in stdout
    assert command("evaluate", "--checkpoint", shown) in stdout
    assert command("predict", "VIDEO.mp4", "--checkpoint", shown) in stdout
    assert command("visualize", "VIDEO.mp4", "--checkpoint", shown, "--output", "viz/") in stdout


def test_closing_summary_quotes_paths_so_the_commands_can_be_pasted(tmp_path, monkeypatch):
    """A path with a space comes back whole from the shell, relative to the working directory below it."""
    output = tmp_path / "my runs" / "demo"
    best = output / "checkpoints" / "best-epoch000.ckpt"
    monkeypatch.chdir(tmp_path)
    metrics = {"output": str(output), "best_checkpoint": str(best), "epochs": 2, "seconds": 75.0}
    text = closing_summary({**metrics, "val_top1": 0.5, "val_top5": 1.0})
    evaluate = next(line for line in text.splitlines() if "evaluate" in line)
    assert shlex.split(evaluate)[-1] == "my runs/demo/checkpoints/best-epoch000.ckpt"
    assert "Trained 2 epochs in 1 min 15 s" in text


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


def test_the_library_generates_the_demo_set_silently_unless_asked(tmp_path, capfd):
    ensure_demo_dataset(tmp_path / "quiet", train_per_class=1, test_per_class=1)
    assert capfd.readouterr().err == ""
    ensure_demo_dataset(tmp_path / "shown", train_per_class=1, test_per_class=1, progress=True)
    err = capfd.readouterr().err
    assert str(tmp_path / "shown") in err and "16/16" in err
