"""``cbam3d train``'s command line (cbam3d.training.cli): its flags and help; what a run from an empty cache
prints (the demo set's generation, no third-party tip or dependency deprecation, our own model summary, and a
closing summary saying where everything is and what to run next); and bad settings and unfit data or files,
each refused in one line naming the flag before any work.

Silencing happens in the command only: the library leaves logging and warnings alone (tests/utils/test_console.py).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning")
pytest.importorskip("av")

from cbam3d.data import DEMO_CLASSES
from cbam3d.training.cli import closing_summary, train_main, train_parser
from cbam3d.utils.console import command

TRAIN_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train.py"
DEMO_TEST_PER_CLASS = 20  # the generator's default size of the test list, which train.py keeps
ESTABLISHED_FLAGS = (
    "--data",
    "--model",
    "--attention",
    "--epochs",
    "--batch-size",
    "--lr",
    "--frames",
    "--size",
    "--devices",
    "--num-workers",
    "--output",
    "--resume",
    "--pretrained",
    "--optimizer",
    "--weight-decay",
    "--warmup-epochs",
    "--label-smoothing",
    "--accumulate",
    "--sampling-rate",
    "--sync-bn",
    "--num-nodes",
    "--seed",
    "--fold",
    "--annotations",
    "--precision",
)


# --- flags and help -----------------------------------------------------------------------------------------
def test_train_keeps_its_established_flags():
    options = {option for action in train_parser()._actions for option in action.option_strings}
    assert set(ESTABLISHED_FLAGS) <= options


def test_train_help_says_what_happens_without_data():
    text = train_parser().format_help()
    assert "demo set" in text and "torchrun" in text


# --- what a run from an empty cache prints --------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, tiny_run) -> dict:
    """``scripts/train.py`` on the demo set (1 training video per class, 1 epoch) with an empty cache, writing
    to ``run/`` below its working directory: what it printed, where it cached the demo set, its metrics."""
    base = tmp_path_factory.mktemp("demo-run")
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


def test_generation_says_where_the_demo_set_is_cached_and_shows_its_progress(demo_run):
    videos = len(DEMO_CLASSES) * (1 + DEMO_TEST_PER_CLASS)
    announcement = next(line for line in demo_run["stderr"].splitlines() if "generating the demo data set" in line)
    assert str(demo_run["cache"]) in announcement and "once" in announcement
    progress = demo_run["stderr"].split(announcement, 1)[1]  # the bar comes after the announcement
    assert "demo videos:" in progress and f"{videos}/{videos}" in progress
    assert any(f"| {done}/{videos} " in progress for done in range(1, videos)), "no intermediate progress shown"


def test_output_has_no_third_party_tip_and_no_dependency_deprecation(demo_run):
    output = demo_run["stdout"] + demo_run["stderr"]
    assert "💡" not in output and "litlogger" not in output
    assert "LeafSpec" not in output and "deprecated" not in output.lower()


def test_model_summary_gives_our_multiply_adds_instead_of_lightnings_zero_flops(demo_run):
    assert "Total FLOPs" not in demo_run["stdout"] + demo_run["stderr"]
    summary = next(line for line in demo_run["stderr"].splitlines() if line.startswith("model: "))
    assert "resnet3d-10 with cbam attention" in summary and "GMACs" in summary
    assert float(summary.split(" GMACs")[0].rsplit(" ", 1)[1]) > 0


def test_closing_summary_names_the_outputs_and_the_next_commands_with_the_best_checkpoint(demo_run):
    """Paths are shown relative to the working directory the command ran in."""
    metrics = demo_run["metrics"]
    best = Path(metrics["best_checkpoint"])
    assert best.is_file() and best.name.startswith("best-")
    stdout = demo_run["stdout"]
    assert f"top-1 {100 * metrics['val_top1']:.1f}%, top-5 {100 * metrics['val_top5']:.1f}%" in stdout
    output = Path(metrics["output"])
    for written in (output / "metrics.json", output / "curves.png", output / "tensorboard"):
        assert written.exists() and f" {written.relative_to(demo_run['cwd'])}" in stdout
    assert "tensorboard --logdir run/tensorboard" in stdout
    shown = best.relative_to(demo_run["cwd"])
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


# --- bad flags and settings ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "/no/such/folder"], "--data /no/such/folder: no such directory"),
        (["--model", "resnet3d-11"], "--model 'resnet3d-11' is not a known model"),
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--attention", "gcnet"], "invalid choice: 'gcnet'"),
        (["--model-option", "not a pair"], "expected KEY=VALUE"),
        (["--augment", "autoaugment"], "invalid choice: 'autoaugment'"),
        (["--augment", "randaugment", "--augment-magnitude", "40"], "--augment-magnitude must be an integer from 0"),
        (["--augment-magnitude", "5"], "--augment-magnitude applies to --augment randaugment only"),
        (["--random-erase", "2"], "--random-erase must be a probability in [0, 1], got 2.0"),
        (["--mixup", "-1"], "--mixup must be 0 or more, got -1.0"),
        (["--cutmix", "nan"], "--cutmix must be a finite number, got nan"),
        (["--ema", "1"], "--ema must be in [0, 1), got 1.0"),
        (["--precise-bn", "2.5"], "--precise-bn: invalid int value: '2.5'"),
        (["--precise-bn", "-1"], "--precise-bn must be 0 (off) or a positive integer, got -1"),
    ],
)
def test_bad_flags_are_refused_in_one_line(argv, message, usage_error):
    assert message in usage_error(train_main, argv)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--lr", "inf"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--weight-decay", "1e400"], "--weight-decay"),
        (["--warmup-epochs", "inf"], "--warmup-epochs"),
        (["--label-smoothing", "nan"], "--label-smoothing"),
        (["--train-scale", "1", "inf"], "--train-scale"),
    ],
)
def test_non_finite_numbers_are_refused_by_name(tmp_path, usage_error, argv, flag):
    line = usage_error(train_main, [*argv, "--output", str(tmp_path / "run")])
    assert f"{flag} must be a finite number" in line


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_numpy_cannot_take_is_refused_by_name(tmp_path, usage_error, seed):
    line = usage_error(train_main, ["--seed", seed, "--output", str(tmp_path / "run")])
    assert f"--seed must be an integer from 0 to {2**32 - 1}, got {seed}" in line


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "bf16-true"])
def test_reduced_precision_on_a_cpu_is_refused_before_training(tmp_path, usage_error, precision):
    argv = ["--accelerator", "cpu", "--precision", precision, "--output", str(tmp_path / "run")]
    line = usage_error(train_main, argv)
    assert f"--precision {precision} does not run on the CPU" in line
    assert not (tmp_path / "run").exists()


def test_sync_bn_is_refused_for_cpu_processes(tmp_path, usage_error):
    line = usage_error(train_main, ["--data", str(tmp_path), "--accelerator", "cpu", "--devices", "2", "--sync-bn"])
    assert "--sync-bn needs GPUs" in line


# --- --output -------------------------------------------------------------------------------------------------
def test_output_naming_a_file_is_refused_before_training(tmp_path, usage_error):
    (tmp_path / "taken").write_text("x")
    line = usage_error(train_main, ["--output", str(tmp_path / "taken")])
    assert line.endswith(f"--output {tmp_path / 'taken'} is a file, not a folder: give a new or existing folder")
    line = usage_error(train_main, ["--output", str(tmp_path / "taken" / "run")])
    assert f"--output {tmp_path / 'taken' / 'run'} cannot be created: {tmp_path / 'taken'} is a file" in line


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_output_in_a_read_only_folder_is_refused_before_training(tmp_path, usage_error):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert "is not writable" in usage_error(train_main, ["--output", str(locked / "run")])


# --- --resume and --pretrained ------------------------------------------------------------------------------------
def test_resume_without_a_previous_run_says_there_is_nothing_to_resume(tmp_path, usage_error):
    line = usage_error(train_main, ["--output", str(tmp_path / "new"), "--resume"])
    assert "nothing to resume" in line and "last.ckpt" in line


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--model", "resnet3d-18"], "was trained with --model 'resnet3d-10', not 'resnet3d-18'"),
        (["--attention", "se"], "was trained with --attention 'cbam', not 'se'"),
        (["--model-option", "widen_factor=0.25"], "was trained with --model-option"),
    ],
)
def test_resume_with_a_different_network_names_the_setting(tiny_trained_run, tmp_path, usage_error, argv, expected):
    output = tmp_path / "run"
    shutil.copytree(tiny_trained_run["output"] / "checkpoints", output / "checkpoints")
    line = usage_error(train_main, ["--output", str(output), "--resume", "--epochs", "3", *argv])
    assert line.split("error: ")[-1].startswith("--resume:") and expected in line


def test_resume_on_a_data_set_with_other_classes_names_both_class_lists(tiny_trained_run, tmp_path, usage_error):
    data = tmp_path / "data"
    shutil.copytree(tiny_trained_run["data"], data)
    (data / "move_right").rename(data / "spin")
    output = tmp_path / "run"
    shutil.copytree(tiny_trained_run["output"] / "checkpoints", output / "checkpoints")
    line = usage_error(train_main, ["--output", str(output), "--resume", "--data", str(data), "--epochs", "3"])
    assert "trained on 2 classes (move_left, move_right) but the data set has 2 (move_left, spin)" in line


class _NotATensor:
    pass


@pytest.mark.parametrize("content", ["text", "pickle", "truncated"])
def test_a_file_that_is_not_a_checkpoint_of_tensors_is_one_line_for_pretrained_and_resume(
    tiny_checkpoint, tmp_path, usage_error, content
):
    path = tmp_path / "weights.pth"
    if content == "text":
        path.write_text("garbage")
    elif content == "pickle":
        torch.save({"state_dict": _NotATensor()}, path)
    else:
        path.write_bytes(tiny_checkpoint.read_bytes()[:3000])
    for flag in ("--pretrained", "--resume"):
        line = usage_error(train_main, [flag, str(path), "--output", str(tmp_path / "run")])
        assert f"checkpoint {path} could not be read as a torch checkpoint" in line


# --- data that cannot train -------------------------------------------------------------------------------------
def test_a_folder_without_videos_is_refused_naming_it(tmp_path, usage_error):
    (tmp_path / "empty_class").mkdir()
    line = usage_error(train_main, ["--data", str(tmp_path), "--output", str(tmp_path / "out")])
    assert str(tmp_path) in line


@pytest.mark.parametrize("broken_split", ["train", "val"])
def test_a_split_without_one_decodable_video_is_refused_before_training(
    tmp_path, tiny_run, make_noise_video, usage_error, broken_split
):
    """Every video of a split unreadable: one line naming the split, nothing trained."""
    root = tmp_path / "data"
    lists = {"train": [], "val": []}
    for name in ("a", "b"):
        for split in ("train", "val"):
            path = root / name / f"{split}.mp4"
            if split == broken_split:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"not a video")
            else:
                make_noise_video(path, frames=8)
            lists[split].append(f"{name}/{split}.mp4")
    (root / "trainlist01.txt").write_text("\n".join(lists["train"]) + "\n")
    (root / "testlist01.txt").write_text("\n".join(lists["val"]) + "\n")
    output = tmp_path / "run"
    line = usage_error(train_main, [*tiny_run, "--data", str(root), "--output", str(output), "--epochs", "1"])
    assert f"none of the 2 videos of the {broken_split} split can be decoded" in line
    assert not (output / "checkpoints").exists()


def test_a_class_with_no_training_video_in_the_split_lists_is_refused_by_name(
    tmp_path, tiny_run, make_noise_video, usage_error
):
    root = tmp_path / "data"
    for name in ("a", "b"):
        for index in range(2):
            make_noise_video(root / name / f"{index}.mp4", frames=8)
    (root / "trainlist01.txt").write_text("a/0.mp4\na/1.mp4\n")
    (root / "testlist01.txt").write_text("a/0.mp4\nb/0.mp4\n")
    (root / "classInd.txt").write_text("1 a\n2 b\n")
    line = usage_error(train_main, [*tiny_run, "--data", str(root), "--output", str(tmp_path / "run")])
    assert "class(es) b have no training videos" in line


@pytest.mark.parametrize(
    "option, message",
    [
        ("n_input_channels=1", "expects 1 input channels"),
        ("widen_factor=1e12", "cannot build resnet3d-10"),
        ("conv1_t_stride=0", "conv1_t_stride must be a positive integer"),
    ],
)
def test_network_options_the_network_cannot_run_with_are_one_line_before_training(
    tiny_trained_run, tmp_path, tiny_run, usage_error, option, message
):
    output = tmp_path / "run"
    argv = [*tiny_run, "--data", str(tiny_trained_run["data"]), "--output", str(output), "--model-option", option]
    assert message in usage_error(train_main, argv)
    assert not (output / "checkpoints").exists()


@pytest.mark.parametrize("where", ["a_file", "below_a_file"])
def test_a_demo_cache_that_cannot_hold_the_demo_set_is_one_line_naming_cbam3d_cache(
    tmp_path, usage_error, monkeypatch, where
):
    (tmp_path / "cache").write_text("x")
    monkeypatch.setenv("CBAM3D_CACHE", str(tmp_path / ("cache" if where == "a_file" else "cache/sub")))
    line = usage_error(train_main, ["--output", str(tmp_path / "run"), "--epochs", "1"])
    assert "the demo set's cache folder cannot hold it" in line and "set CBAM3D_CACHE to a writable folder" in line


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_demo_cache_is_one_line_naming_cbam3d_cache(tmp_path, usage_error, monkeypatch):
    (tmp_path / "cache").mkdir(mode=0o500)
    monkeypatch.setenv("CBAM3D_CACHE", str(tmp_path / "cache"))
    line = usage_error(train_main, ["--output", str(tmp_path / "run"), "--epochs", "1"])
    assert "is not writable" in line and "CBAM3D_CACHE" in line
