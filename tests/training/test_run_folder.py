"""A run folder under an unlucky operator: a kill between the best and the last checkpoint, a moved or copied
folder, temporaries of killed writes, a second run into the same folder (at once or later), a full disk, Ctrl-C
during the final evaluation, SIGTERM while training, a resume with no epoch left, and a data set of one class.

The runs are the tiny ones of tests/training/conftest.py; most tests resume a copy of ``tiny_trained_run``
(2 epochs done) with ``--epochs 2``, which trains nothing and only evaluates.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

L = pytest.importorskip("lightning")
pytest.importorskip("av")

from cbam3d.training import train  # noqa: E402
from cbam3d.training.cli import train_main  # noqa: E402
from cbam3d.training.lightning import checkpoint_io, trainer  # noqa: E402
from cbam3d.training.lightning.checkpoints import LastCheckpoint  # noqa: E402
from cbam3d.training.settings import TrainConfig  # noqa: E402
from cbam3d.utils.atomic import atomic_write  # noqa: E402
from cbam3d.utils.locking import folder_lock  # noqa: E402

RESUME = ("--resume", "--num-workers", "0", "--threads", "1")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def best_named_by(last: Path) -> Path:
    """The best checkpoint that ``last`` names (the state of its best-checkpoint callback)."""
    states = torch.load(last, weights_only=False)["callbacks"]
    return Path(next(state["best_model_path"] for key, state in states.items() if "'val_top1'" in key))


@pytest.fixture
def finished_copy(tmp_path, tiny_trained_run) -> Path:
    """A copy of the tiny trained run's folder (2 epochs done), elsewhere."""
    return Path(shutil.copytree(tiny_trained_run["output"], tmp_path / "copy"))


class SimulatedKill(Exception):
    pass


class ImprovingEveryEpoch(L.Callback):
    """Makes every epoch the best so far, so that each one saves a new best checkpoint and drops the old one."""

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.callback_metrics["val_top1"] = torch.tensor(0.1 * (trainer.current_epoch + 1))


def test_the_best_checkpoint_named_by_last_ckpt_exists_after_a_kill_between_the_two_saves(
    tmp_path, tiny_trained_run, tiny_run, config_from_flags, monkeypatch
):
    """Killed after epoch 1's new best was saved and before its last.ckpt: last.ckpt (epoch 0) still names a best
    that exists, a resume with no epoch left evaluates it, and the unnamed newer best is removed."""
    output = tmp_path / "run"
    save_last = LastCheckpoint._save_checkpoint

    def killed_in_epoch_1(self, trainer, filepath):
        if trainer.current_epoch == 1:
            trainer.progress_bar_callback.train_progress_bar.close()  # a killed process takes its bar along
            raise SimulatedKill
        save_last(self, trainer, filepath)

    monkeypatch.setattr(LastCheckpoint, "_save_checkpoint", killed_in_epoch_1)
    config = config_from_flags(*tiny_run, "--data", str(tiny_trained_run["data"]), "--output", str(output))
    config.epochs, config.callbacks = 2, [ImprovingEveryEpoch()]
    with pytest.raises(SimulatedKill):
        train(config)
    monkeypatch.undo()
    checkpoints = output / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("best-*.ckpt")) == [
        "best-epoch000-top10.1000.ckpt",
        "best-epoch001-top10.2000.ckpt",
    ]
    named = best_named_by(checkpoints / "last.ckpt")
    assert named.name == "best-epoch000-top10.1000.ckpt" and named.is_file()

    assert train_main(["--output", str(output), *RESUME, "--epochs", "1"]) == 0
    assert Path(read_json(output / "metrics.json")["best_checkpoint"]) == named.resolve()
    assert [p.name for p in checkpoints.glob("best-*.ckpt")] == [named.name]


def test_a_copied_run_folder_resumes_with_its_own_checkpoints_and_leaves_the_original_alone(
    finished_copy, tiny_trained_run
):
    original = tiny_trained_run["output"] / "checkpoints"
    before = {path.name: path.stat().st_mtime_ns for path in original.iterdir()}
    assert train_main(["--output", str(finished_copy), *RESUME, "--epochs", "3"]) == 0
    metrics = read_json(finished_copy / "metrics.json")
    assert metrics["epochs"] == 3
    assert Path(metrics["best_checkpoint"]).parent == (finished_copy / "checkpoints").resolve()
    assert best_named_by(finished_copy / "checkpoints" / "last.ckpt").parent == (finished_copy / "checkpoints")
    assert len(list((finished_copy / "checkpoints").glob("best-*.ckpt"))) == 1
    assert {path.name: path.stat().st_mtime_ns for path in original.iterdir()} == before


def test_temporaries_of_killed_writes_are_removed_at_the_next_start_and_other_files_kept(finished_copy):
    checkpoints = finished_copy / "checkpoints"
    leftovers = [checkpoints / ".last.ckpt.a1b2c3d4.tmp", finished_copy / ".metrics.json.zz_9yx8w.tmp"]
    leftovers.append(checkpoints / ".best-epoch001-top11.0000.ckpt.q1w2e3r4.tmp")
    for path in leftovers:
        path.write_bytes(b"half a checkpoint")
    (checkpoints / "notes.tmp").write_text("the user's own file")
    assert train_main(["--output", str(finished_copy), *RESUME, "--epochs", "2"]) == 0
    assert not any(path.exists() for path in leftovers)
    assert (checkpoints / "notes.tmp").is_file()
    assert Path(read_json(finished_copy / "metrics.json")["best_checkpoint"]).name.startswith("best-epoch")


def test_a_resume_with_no_epoch_left_says_so_in_one_line_and_evaluates(finished_copy, caplog):
    with caplog.at_level("INFO"):
        assert train_main(["--output", str(finished_copy), *RESUME, "--epochs", "1"]) == 0
    said = [record.getMessage() for record in caplog.records if "nothing left to train" in record.getMessage()]
    assert len(said) == 1 and "has trained 2 epochs and --epochs is 1" in said[0]
    assert read_json(finished_copy / "metrics.json")["epochs"] == 2


def test_a_new_run_into_a_folder_holding_a_run_is_refused_and_changes_nothing(
    finished_copy, tiny_trained_run, tiny_run, usage_error
):
    before = {path: path.read_bytes() for path in finished_copy.rglob("*") if path.is_file()}
    argv = [*tiny_run, "--data", str(tiny_trained_run["data"]), "--output", str(finished_copy), "--epochs", "1"]
    line = usage_error(train_main, argv)
    assert "holds a run already (checkpoints/last.ckpt): continue it with --resume" in line
    assert {path: path.read_bytes() for path in finished_copy.rglob("*") if path.is_file()} == before


@pytest.mark.parametrize("resume", [False, True])
def test_a_folder_another_process_trains_in_is_refused(finished_copy, tiny_trained_run, tiny_run, usage_error, resume):
    """The lock is held by this test here; a second process gets the same refusal (tests/utils/test_locking.py)."""
    argv = ["--output", str(finished_copy), *RESUME] if resume else [*tiny_run, "--output", str(finished_copy)]
    with folder_lock(finished_copy):
        line = usage_error(train_main, [*argv, "--data", str(tiny_trained_run["data"])])
    assert f"--output {finished_copy} is in use by another training run" in line


def test_a_data_set_of_one_class_is_refused_before_training(tmp_path, make_tiny_dataset, tiny_run, usage_error):
    data = make_tiny_dataset(tmp_path / "data")
    shutil.rmtree(data / "move_right")
    line = usage_error(train_main, [*tiny_run, "--data", str(data), "--output", str(tmp_path / "run")])
    assert "a classifier needs at least two classes, found only one, 'move_left'" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_full_disk_while_saving_a_checkpoint_ends_in_one_line_and_keeps_the_earlier_ones(
    tmp_path, tiny_trained_run, tiny_run, capsys, monkeypatch
):
    """Epoch 0 saves its best and last checkpoints; the disk is full from then on."""
    output = tmp_path / "run"
    saves = []

    def full_after_two(checkpoint, path):
        saves.append(path)
        if len(saves) <= 2:
            return checkpoint_io.atomic_torch_save.__wrapped__(checkpoint, path)

        def write(file):
            file.write(b"a part")
            raise OSError(errno.ENOSPC, "No space left on device")

        return atomic_write(path, write)

    full_after_two.__wrapped__ = checkpoint_io.atomic_torch_save
    monkeypatch.setattr(checkpoint_io, "atomic_torch_save", full_after_two)
    argv = [*tiny_run, "--data", str(tiny_trained_run["data"]), "--output", str(output), "--epochs", "2"]
    assert train_main(argv) == 1
    error = capsys.readouterr().err
    assert "Traceback" not in error and "unexpected pos" not in error
    assert error.strip().splitlines()[-1] == (
        f"cbam3d train: error: no space left on device while writing {saves[2]}; the checkpoints written before "
        "are intact"
    )
    last = torch.load(output / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 0 and best_named_by(output / "checkpoints" / "last.ckpt").is_file()
    assert not list((output / "checkpoints").glob(".*.tmp"))


def test_ctrl_c_during_the_final_evaluation_says_how_to_continue_and_the_resume_finishes(
    finished_copy, capsys, monkeypatch
):
    (finished_copy / "metrics.json").unlink()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_final_evaluation", interrupted)
    assert train_main(["--output", str(finished_copy), *RESUME, "--epochs", "2"]) == 130
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == f"cbam3d train: interrupted; continue with: cbam3d train --output {finished_copy} --resume"
    monkeypatch.undo()
    assert train_main(["--output", str(finished_copy), *RESUME, "--epochs", "2"]) == 0
    assert read_json(finished_copy / "metrics.json")["epochs"] == 2


class InterruptedInEpoch1(L.Callback):
    """Calls ``interrupt`` in the middle of epoch 1: a SIGTERM to this process, as a job scheduler sends, or
    Ctrl-C's KeyboardInterrupt."""

    def __init__(self, interrupt):
        self.interrupt = interrupt

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 0:
            self.interrupt()

    def on_exception(self, trainer, pl_module, exception):
        trainer.progress_bar_callback.train_progress_bar.close()  # a dying process takes its bar along


def _sigterm():
    os.kill(os.getpid(), signal.SIGTERM)


def _ctrl_c():
    raise KeyboardInterrupt


@pytest.fixture
def interrupted_run(tmp_path, tiny_trained_run, tiny_run, config_from_flags, monkeypatch):
    """``interrupted_run(interrupt)``: the output folder of a two-epoch `cbam3d train` (run by the caller with
    ``train_main([])``) that ``interrupt`` stops in epoch 1."""

    def configure(interrupt):
        output = tmp_path / "run"
        config = config_from_flags(*tiny_run, "--data", str(tiny_trained_run["data"]), "--output", str(output))
        config.epochs, config.callbacks = 2, [InterruptedInEpoch1(interrupt)]
        monkeypatch.setattr(TrainConfig, "from_arguments", classmethod(lambda cls, args: config))
        return output

    return configure


def test_a_terminated_training_exits_143_saying_how_to_continue_not_0_as_if_finished(interrupted_run, capsys):
    output = interrupted_run(_sigterm)
    assert train_main([]) == 143
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == f"cbam3d train: terminated (SIGTERM); continue with: cbam3d train --output {output} --resume"
    assert not (output / "metrics.json").exists()
    assert torch.load(output / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 0


def test_a_best_checkpoint_deleted_by_hand_leaves_the_resume_to_evaluate_the_last_one(finished_copy):
    for best in (finished_copy / "checkpoints").glob("best-*.ckpt"):
        best.unlink()
    with pytest.warns(UserWarning, match="named by the resumed checkpoint is missing"):
        assert train_main(["--output", str(finished_copy), *RESUME, "--epochs", "2"]) == 0
    assert read_json(finished_copy / "metrics.json")["best_checkpoint"].endswith("last.ckpt")


def test_ctrl_c_while_training_exits_130_saying_how_to_continue(interrupted_run, capsys):
    output = interrupted_run(_ctrl_c)
    handler = signal.getsignal(signal.SIGINT)
    try:
        assert train_main([]) == 130
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl-Cs while it shuts down
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == f"cbam3d train: interrupted; continue with: cbam3d train --output {output} --resume"
    assert torch.load(output / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 0
