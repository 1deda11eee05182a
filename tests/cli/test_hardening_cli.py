"""Bad settings and unfit files at the command line: one line saying what is wrong, before any work (issue 13)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

L = pytest.importorskip("lightning")
pytest.importorskip("av")

from cbam3d.benchmark.cli import benchmark_main  # noqa: E402
from cbam3d.inference.cli import evaluate_main, predict_main  # noqa: E402
from cbam3d.training import TrainConfig, train  # noqa: E402
from cbam3d.training.cli import train_main, train_parser  # noqa: E402
from cbam3d.utils.atomic import atomic_write, atomic_write_json  # noqa: E402
from cbam3d.utils.errors import UsageError  # noqa: E402
from cbam3d.viz.cli import main as visualize_main  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_tiny_dataset, tiny_run) -> dict[str, Path]:
    """One tiny one-epoch run: its data, output folder and last checkpoint."""
    base = tmp_path_factory.mktemp("hardening")
    data = make_tiny_dataset(base / "data")
    output = base / "run"
    previous = os.umask(0o022)
    try:
        assert train_main(["--data", str(data), "--output", str(output), "--epochs", "1", *tiny_run]) == 0
    finally:
        os.umask(previous)
    return {"data": data, "output": output, "checkpoint": output / "checkpoints" / "last.ckpt"}


@pytest.fixture
def a_video(trained) -> Path:
    return next((trained["data"] / "move_left").glob("*.mp4"))


# --- 5: reduced precision on a CPU -----------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "bf16-true"])
def test_reduced_precision_on_a_cpu_is_refused_before_training(tmp_path, usage_error, precision):
    argv = ["--accelerator", "cpu", "--precision", precision, "--output", str(tmp_path / "run")]
    line = usage_error(train_main, argv)
    assert f"--precision {precision} does not run on the CPU" in line
    assert not (tmp_path / "run").exists()


# --- 6: non-finite settings and a loss that turns non-finite ---------------------------------------------------
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


def test_evaluate_refuses_a_negative_worker_count_by_name(trained, usage_error):
    argv = ["--checkpoint", str(trained["checkpoint"]), "--num-workers", "-1"]
    assert "--num-workers must be 0 or more, got -1" in usage_error(evaluate_main, argv)


class PoisonTheClassifier(L.Callback):
    """Makes every weight nan before the third batch of the first epoch, so the loss turns nan there."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 2:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.fill_(float("nan"))


def test_a_run_whose_loss_turns_non_finite_stops_naming_the_step_and_claims_no_best_checkpoint(
    tmp_path, make_tiny_dataset, tiny_run
):
    data = make_tiny_dataset(tmp_path / "data")
    argv = [*tiny_run, "--data", str(data), "--output", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "2"]
    config = TrainConfig.from_arguments(train_parser().parse_args(argv))
    config.callbacks = [PoisonTheClassifier()]
    with pytest.raises(UsageError, match=r"the loss is nan \(not finite\) at step 2 \(epoch 0, batch 2\)"):
        train(config)
    assert not list((tmp_path / "run").glob("checkpoints/best-*.ckpt"))
    assert not (tmp_path / "run" / "metrics.json").exists()


# --- 8: file modes follow the umask -------------------------------------------------------------------------
def test_the_run_outputs_are_readable_by_others_under_umask_022(trained):
    for name in ("checkpoints/last.ckpt", "metrics.json", "curves.png"):
        assert stat.S_IMODE((trained["output"] / name).stat().st_mode) == 0o644, name


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_give_new_files_the_mode_the_umask_allows(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = atomic_write_json({"a": 1}, tmp_path / "new.json")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_atomic_writes_keep_the_mode_of_the_file_they_replace(tmp_path):
    path = tmp_path / "kept.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write(path, lambda file: file.write(b"new"))
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o640


# --- 9 and 13: --output that cannot be a folder ----------------------------------------------------------------
def test_train_output_naming_a_file_is_refused_before_training(tmp_path, usage_error):
    (tmp_path / "taken").write_text("x")
    line = usage_error(train_main, ["--output", str(tmp_path / "taken")])
    assert line.endswith(f"--output {tmp_path / 'taken'} is a file, not a folder: give a new or existing folder")
    line = usage_error(train_main, ["--output", str(tmp_path / "taken" / "run")])
    assert f"--output {tmp_path / 'taken' / 'run'} cannot be created: {tmp_path / 'taken'} is a file" in line


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_train_output_in_a_read_only_folder_is_refused_before_training(tmp_path, usage_error):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert "is not writable" in usage_error(train_main, ["--output", str(locked / "run")])


def test_evaluate_output_naming_a_file_is_one_line(trained, tmp_path, usage_error):
    (tmp_path / "taken").write_text("x")
    argv = ["--checkpoint", str(trained["checkpoint"]), "--output", str(tmp_path / "taken")]
    assert "--output" in usage_error(evaluate_main, argv) and "is a file, not a folder" in usage_error(
        evaluate_main, argv
    )


def test_visualize_output_naming_a_file_is_one_line(trained, a_video, tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    argv = [str(a_video), "--checkpoint", str(trained["checkpoint"]), "--output", str(tmp_path / "taken")]
    assert visualize_main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "Traceback" not in error and len(error.splitlines()) == 1 and "is a file, not a folder" in error


# --- 10: --resume with a different network or class list ------------------------------------------------------
@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--model", "resnet3d-18"], "was trained with --model 'resnet3d-10', not 'resnet3d-18'"),
        (["--attention", "se"], "was trained with --attention 'cbam', not 'se'"),
        (["--model-option", "widen_factor=0.25"], "was trained with --model-option"),
    ],
)
def test_resume_with_a_different_network_names_the_setting(trained, tmp_path, usage_error, argv, expected):
    output = tmp_path / "run"
    shutil.copytree(trained["output"] / "checkpoints", output / "checkpoints")
    line = usage_error(train_main, ["--output", str(output), "--resume", "--epochs", "2", *argv])
    assert line.split("error: ")[-1].startswith("--resume:") and expected in line


def test_resume_on_a_data_set_with_other_classes_names_both_class_lists(trained, tmp_path, usage_error):
    data = tmp_path / "data"
    shutil.copytree(trained["data"], data)
    (data / "move_right").rename(data / "spin")
    output = tmp_path / "run"
    shutil.copytree(trained["output"] / "checkpoints", output / "checkpoints")
    line = usage_error(train_main, ["--output", str(output), "--resume", "--data", str(data), "--epochs", "2"])
    assert "trained on 2 classes (move_left, move_right) but the data set has 2 (move_left, spin)" in line


# --- 12: a checkpoint whose stored settings do not fit its weights --------------------------------------------
def _edited_checkpoint(trained, tmp_path, edit) -> Path:
    checkpoint = torch.load(trained["checkpoint"], weights_only=True)
    edit(checkpoint["cbam3d"])
    path = tmp_path / "edited.ckpt"
    torch.save(checkpoint, path)
    return path


def _set_attention(info):
    info["model"]["attention"] = "se"


def _more_classes(info):
    info["class_names"] = [*info["class_names"], "third"]


def _drop_clip(info):
    del info["clip"]


def _unknown_clip_field(info):
    info["clip"]["fps"] = 8


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set_attention, "its weights do not fit its stored settings"),
        (_more_classes, "its weights do not fit its stored settings"),
        (_drop_clip, "its clip settings None are not the expected fields"),
        (_unknown_clip_field, "its clip settings"),
    ],
)
def test_a_checkpoint_whose_settings_do_not_fit_is_one_line_in_every_command(
    trained, a_video, tmp_path, usage_error, capsys, edit, message
):
    path = str(_edited_checkpoint(trained, tmp_path, edit))
    assert message in usage_error(evaluate_main, ["--checkpoint", path, "--output", str(tmp_path / "eval")])
    assert message in usage_error(predict_main, [str(a_video), "--checkpoint", path])
    assert visualize_main([str(a_video), "--checkpoint", path, "--output", str(tmp_path / "viz")]) == 2
    error = capsys.readouterr().err.strip()
    assert "Traceback" not in error and message in error and len(error.splitlines()) == 1


class _NotATensor:
    pass


@pytest.mark.parametrize("content", ["text", "pickle", "truncated"])
def test_a_file_that_is_not_a_checkpoint_of_tensors_is_one_line_for_pretrained_and_resume(
    trained, tmp_path, usage_error, content
):
    path = tmp_path / "weights.pth"
    if content == "text":
        path.write_text("garbage")
    elif content == "pickle":
        torch.save({"state_dict": _NotATensor()}, path)
    else:
        path.write_bytes(trained["checkpoint"].read_bytes()[:3000])
    for flag in ("--pretrained", "--resume"):
        line = usage_error(train_main, [flag, str(path), "--output", str(tmp_path / "run")])
        assert f"checkpoint {path} could not be read as a torch checkpoint" in line


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--repeats", "-1"], "--repeats must be at least 0, got -1"),
        (["--threads", "0"], "--threads must be at least 1, got 0"),
        (["--shape", "0", "16", "4", "8", "8"], "--shape sizes must be positive"),
        (["--device", "nonsense"], "--device 'nonsense'"),
        (["--json", "/no/such/folder/results.json"], "expected a file in an existing folder"),
    ],
)
def test_benchmark_options_out_of_range_are_one_line_before_any_timing(usage_error, argv, message):
    assert message in usage_error(benchmark_main, ["--quick", *argv])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_benchmark_on_cuda_without_a_gpu_is_one_line(usage_error):
    assert "no CUDA device is available" in usage_error(benchmark_main, ["--quick", "--device", "cuda"])
