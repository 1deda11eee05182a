"""End to end: a tiny run trains one epoch, resumes to a second, and is evaluated and predicted with; a crashed
and resumed run ends as an uninterrupted one; a loss that turns non-finite stops the run; the outputs are
readable by others.

The videos are 32x32, 8 frames, two classes told apart by the direction of motion only (a bright square moving
left or right); the finished run is the session fixture ``tiny_trained_run`` (tests/training/conftest.py).
"""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

import pytest
import torch

L = pytest.importorskip("lightning")
pytest.importorskip("av")

from cbam3d.data import discover_videos  # noqa: E402
from cbam3d.inference import load_checkpoint  # noqa: E402
from cbam3d.inference.cli import evaluate_main, predict_main  # noqa: E402
from cbam3d.training import train  # noqa: E402
from cbam3d.training.cli import train_main  # noqa: E402
from cbam3d.utils.errors import UsageError  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


class SimulatedCrash(Exception):
    pass


class CrashInSecondEpoch(L.Callback):
    """Kills the run in the middle of its second epoch (after last.ckpt of the first was written)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 1:
            # A dying process takes its progress bar with it; this one lives on in pytest, so close it.
            trainer.progress_bar_callback.train_progress_bar.close()
            raise SimulatedCrash


@pytest.fixture(scope="module")
def crashed_and_straight(tmp_path_factory, tiny_trained_run, tiny_run, config_from_flags) -> tuple[Path, Path]:
    """Two runs of 2 epochs on the tiny run's data: one crashed in its second epoch and resumed, one straight."""
    base = tmp_path_factory.mktemp("crash")
    data = str(tiny_trained_run["data"])
    crashed = base / "crashed"
    config = config_from_flags("--data", data, "--output", str(crashed), "--epochs", "2", *tiny_run)
    config.callbacks = [CrashInSecondEpoch()]
    with pytest.raises(SimulatedCrash):
        train(config)
    assert train_main(["--output", str(crashed), "--resume", "--num-workers", "0", "--threads", "1"]) == 0
    straight = base / "straight"
    assert train_main(["--data", data, "--output", str(straight), "--epochs", "2", *tiny_run]) == 0
    return crashed, straight


def test_metrics_json_holds_the_required_fields_with_sane_values(tiny_trained_run):
    metrics = tiny_trained_run["second"]
    for key in ("val_top1", "val_top5", "epochs", "seconds", "best_checkpoint"):
        assert key in metrics, key
    assert 0.0 <= metrics["val_top1"] <= metrics["val_top5"] <= 1.0
    assert metrics["val_top5"] == 1.0  # two classes: the true one is always in the top 5
    assert metrics["seconds"] > 0
    assert Path(metrics["best_checkpoint"]).is_file()
    assert metrics["val_videos"] == len(discover_videos(tiny_trained_run["data"], "val").records)


def test_resume_continues_the_run_instead_of_restarting_it(tiny_trained_run):
    """Epoch counts add up across the resume, the first epoch's record is kept as it was, and the
    resumed process trained epoch 1 only (its CSV log has no epoch-0 rows)."""
    first, second = tiny_trained_run["first"], tiny_trained_run["second"]
    assert first["epochs"] == 1 and first["resumed_from"] is None
    assert second["epochs"] == 2
    assert second["resumed_from"].endswith("last.ckpt")
    assert [entry["epoch"] for entry in second["history"]] == [0, 1]
    assert second["history"][0] == first["history"][0]
    versions = sorted((tiny_trained_run["output"] / "csv").glob("version_*/metrics.csv"))
    assert len(versions) == 2
    with open(versions[1]) as file:
        epochs = {row["epoch"] for row in csv.DictReader(file) if row.get("epoch")}
    assert epochs == {"1"}


def test_a_crashed_and_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(
    tiny_trained_run, crashed_and_straight
):
    """Optimizer, schedule, data order and augmentation all continue exactly: same weights as 2 epochs straight."""
    crashed, straight_run = crashed_and_straight
    assert read_json(crashed / "metrics.json")["epochs"] == 2
    resumed = torch.load(crashed / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    straight = torch.load(straight_run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert resumed.keys() == straight.keys()
    for key in resumed:
        torch.testing.assert_close(resumed[key], straight[key], msg=key)

    extended = torch.load(tiny_trained_run["output"] / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    before = tiny_trained_run["first_last"]["state_dict"]
    assert any(not torch.equal(before[key], extended[key]) for key in before)  # the resumed epoch did train


def test_curves_png_is_a_valid_png_image(tiny_trained_run):
    import matplotlib.image

    path = tiny_trained_run["output"] / "curves.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_checkpoint_rebuilds_the_trained_model_with_everything_inference_needs(tiny_trained_run, tiny_classes):
    model, info = load_checkpoint(tiny_trained_run["second"]["best_checkpoint"])
    assert not model.training
    assert info["class_names"] == list(tiny_classes)
    assert info["model"] == {
        "name": "resnet3d-10",
        "attention": "cbam",
        "attention_kwargs": {},
        "options": {"widen_factor": 0.125, "no_max_pool": True},
    }
    assert info["clip"]["frames"] == 4 and info["clip"]["sampling_rate"] == 2 and info["clip"]["size"] == 32
    assert len(info["clip"]["mean"]) == 3 and len(info["clip"]["std"]) == 3
    with torch.inference_mode():
        assert model(torch.randn(2, 3, 4, 32, 32)).shape == (2, 2)


def test_no_temporary_files_are_left_next_to_the_checkpoints(tiny_trained_run):
    leftovers = [p.name for p in (tiny_trained_run["output"] / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_evaluate_prints_the_report_and_writes_the_confusion_png_and_json(
    tiny_trained_run, tmp_path, capsys, tiny_classes
):
    checkpoint = tiny_trained_run["output"] / "checkpoints" / "last.ckpt"
    assert (
        evaluate_main(["--checkpoint", str(checkpoint), "--clips", "2", "--crops", "3", "--output", str(tmp_path)]) == 0
    )
    printed = capsys.readouterr().out
    assert "video top-1" in printed and "per-class accuracy" in printed and "confusion matrix" in printed
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == PNG_SIGNATURE
    report = read_json(tmp_path / "evaluation.json")
    videos = len(discover_videos(tiny_trained_run["data"], "val").records)
    assert report["videos"] == videos and report["clips"] == 2 and report["crops"] == 3
    assert sum(map(sum, report["confusion"])) == videos
    assert set(report["per_class"]) == set(tiny_classes)
    assert report["top1"] == pytest.approx(sum(report["confusion"][i][i] for i in range(2)) / videos)


def test_predict_prints_topk_labels_with_probabilities_per_file_and_flags_unreadable_ones(
    tiny_trained_run, tmp_path, capsys, tiny_classes
):
    videos = sorted((tiny_trained_run["data"] / "move_left").glob("*.mp4"))[:2]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    checkpoint = tiny_trained_run["second"]["best_checkpoint"]
    status = predict_main([*map(str, videos), str(broken), "--checkpoint", checkpoint, "--topk", "2", "--json"])
    assert status == 1  # one file could not be read
    results = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in results] == [*map(str, videos), str(broken)]
    for result in results[:2]:
        assert result["error"] is None
        assert {t["label"] for t in result["top"]} == set(tiny_classes)
        probabilities = [t["probability"] for t in result["top"]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
    assert results[2]["top"] == [] and results[2]["error"]


def test_the_run_outputs_are_readable_by_others_under_umask_022(tiny_trained_run):
    for name in ("checkpoints/last.ckpt", "metrics.json", "curves.png"):
        assert stat.S_IMODE((tiny_trained_run["output"] / name).stat().st_mode) == 0o644, name


class PoisonTheClassifier(L.Callback):
    """Makes every weight nan before the third batch of the first epoch, so the loss turns nan there."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 2:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.fill_(float("nan"))

    def on_exception(self, trainer, pl_module, exception):
        # A failing process takes its progress bar with it; this one lives on in pytest, so close it.
        trainer.progress_bar_callback.train_progress_bar.close()


def test_a_run_whose_loss_turns_non_finite_stops_naming_the_step_and_claims_no_best_checkpoint(
    tmp_path, tiny_trained_run, tiny_run, config_from_flags
):
    output = tmp_path / "run"
    argv = [
        *tiny_run,
        "--data",
        str(tiny_trained_run["data"]),
        "--output",
        str(output),
        "--epochs",
        "1",
        "--batch-size",
        "2",
    ]
    config = config_from_flags(*argv)
    config.callbacks = [PoisonTheClassifier()]
    with pytest.raises(UsageError, match=r"the loss is nan \(not finite\) at step 2 \(epoch 0, batch 2\)"):
        train(config)
    assert not list(output.glob("checkpoints/best-*.ckpt"))
    assert not (output / "metrics.json").exists()
