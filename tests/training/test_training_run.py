"""End to end: train one epoch on a tiny generated video set, resume to a second, then evaluate and predict.

One module-scoped run (a few seconds on a CPU) feeds every test here. The videos are 32x32, 8 frames, two
classes told apart by the direction of motion only (a bright square moving left or right).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

L = pytest.importorskip("lightning")
pytest.importorskip("av")

from cbam3d.data import discover_videos  # noqa: E402
from cbam3d.inference import load_checkpoint  # noqa: E402
from cbam3d.inference.cli import evaluate_main, predict_main  # noqa: E402
from cbam3d.training import TrainConfig, train  # noqa: E402
from cbam3d.training.cli import train_main, train_parser  # noqa: E402

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
def run(tmp_path_factory, make_tiny_dataset, tiny_run) -> dict:
    """Four tiny runs: 1 epoch then ``--resume`` to 2 (extended); 2 epochs crashed in the second and resumed;
    2 epochs straight."""
    base = tmp_path_factory.mktemp("training")
    data = make_tiny_dataset(base / "data")
    output = base / "run"
    assert train_main(["--data", str(data), "--output", str(output), "--epochs", "1", *tiny_run]) == 0
    first = read_json(output / "metrics.json")
    first_last = torch.load(output / "checkpoints" / "last.ckpt", weights_only=True)
    # --resume takes the data set, network, clips and optimisation from the checkpoint
    resume = ["--resume", "--num-workers", "0", "--threads", "1"]
    assert train_main(["--output", str(output), *resume, "--epochs", "2"]) == 0

    crashed = base / "crashed"
    config = TrainConfig.from_arguments(
        train_parser().parse_args(["--data", str(data), "--output", str(crashed), "--epochs", "2", *tiny_run])
    )
    config.callbacks = [CrashInSecondEpoch()]
    with pytest.raises(SimulatedCrash):
        train(config)
    assert train_main(["--output", str(crashed), *resume]) == 0

    straight = base / "straight"
    assert train_main(["--data", str(data), "--output", str(straight), "--epochs", "2", *tiny_run]) == 0
    return {
        "data": data,
        "output": output,
        "first": first,
        "first_last": first_last,
        "second": read_json(output / "metrics.json"),
        "crashed": crashed,
        "straight": straight,
    }


def test_metrics_json_holds_the_required_fields_with_sane_values(run):
    metrics = run["second"]
    for key in ("val_top1", "val_top5", "epochs", "seconds", "best_checkpoint"):
        assert key in metrics, key
    assert 0.0 <= metrics["val_top1"] <= metrics["val_top5"] <= 1.0
    assert metrics["val_top5"] == 1.0  # two classes: the true one is always in the top 5
    assert metrics["seconds"] > 0
    assert Path(metrics["best_checkpoint"]).is_file()
    assert metrics["val_videos"] == len(discover_videos(run["data"], "val").records)


def test_resume_continues_the_run_instead_of_restarting_it(run):
    """Epoch counts add up across the resume, the first epoch's record is kept as it was, and the
    resumed process trained epoch 1 only (its CSV log has no epoch-0 rows)."""
    first, second = run["first"], run["second"]
    assert first["epochs"] == 1 and first["resumed_from"] is None
    assert second["epochs"] == 2
    assert second["resumed_from"].endswith("last.ckpt")
    assert [entry["epoch"] for entry in second["history"]] == [0, 1]
    assert second["history"][0] == first["history"][0]
    versions = sorted((run["output"] / "csv").glob("version_*/metrics.csv"))
    assert len(versions) == 2
    with open(versions[1]) as file:
        epochs = {row["epoch"] for row in csv.DictReader(file) if row.get("epoch")}
    assert epochs == {"1"}


def test_a_crashed_and_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(run):
    """Optimizer, schedule, data order and augmentation all continue exactly: same weights as 2 epochs straight."""
    assert read_json(run["crashed"] / "metrics.json")["epochs"] == 2
    resumed = torch.load(run["crashed"] / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    straight = torch.load(run["straight"] / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert resumed.keys() == straight.keys()
    for key in resumed:
        torch.testing.assert_close(resumed[key], straight[key], msg=key)

    extended = torch.load(run["output"] / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    before = run["first_last"]["state_dict"]
    assert any(not torch.equal(before[key], extended[key]) for key in before)  # the resumed epoch did train


def test_curves_png_is_a_valid_png_image(run):
    import matplotlib.image

    path = run["output"] / "curves.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_checkpoint_rebuilds_the_trained_model_with_everything_inference_needs(run, tiny_classes):
    model, info = load_checkpoint(run["second"]["best_checkpoint"])
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


def test_no_temporary_files_are_left_next_to_the_checkpoints(run):
    leftovers = [p.name for p in (run["output"] / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_evaluate_prints_the_report_and_writes_the_confusion_png_and_json(run, tmp_path, capsys, tiny_classes):
    checkpoint = run["output"] / "checkpoints" / "last.ckpt"
    assert (
        evaluate_main(["--checkpoint", str(checkpoint), "--clips", "2", "--crops", "3", "--output", str(tmp_path)]) == 0
    )
    printed = capsys.readouterr().out
    assert "video top-1" in printed and "per-class accuracy" in printed and "confusion matrix" in printed
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == PNG_SIGNATURE
    report = read_json(tmp_path / "evaluation.json")
    videos = len(discover_videos(run["data"], "val").records)
    assert report["videos"] == videos and report["clips"] == 2 and report["crops"] == 3
    assert sum(map(sum, report["confusion"])) == videos
    assert set(report["per_class"]) == set(tiny_classes)
    assert report["top1"] == pytest.approx(sum(report["confusion"][i][i] for i in range(2)) / videos)


def test_predict_prints_topk_labels_with_probabilities_per_file_and_flags_unreadable_ones(
    run, tmp_path, capsys, tiny_classes
):
    videos = sorted((run["data"] / "move_left").glob("*.mp4"))[:2]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    checkpoint = run["second"]["best_checkpoint"]
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
