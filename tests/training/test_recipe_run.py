"""End to end: a tiny run with every recipe option on trains, resumes with its weight average, and writes
checkpoints that hold the average and say so."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("lightning")
pytest.importorskip("av")

from cbam3d.inference import load_checkpoint
from cbam3d.training.cli import train_main

RECIPE = (
    "--augment", "randaugment", "--augment-magnitude", "5", "--random-erase", "0.5", "--mixup", "0.8",
    "--cutmix", "1.0", "--ema", "0.9", "--precise-bn", "2", "--class-balanced",
)  # fmt: skip


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory, make_tiny_dataset, tiny_run) -> dict:
    base = tmp_path_factory.mktemp("recipe")
    data, output = make_tiny_dataset(base / "data"), base / "run"
    # one loading worker: precise BN reads training batches again from the persistent worker between epochs
    flags = ["--data", str(data), "--output", str(output), "--epochs", "1", *tiny_run, *RECIPE, "--num-workers", "1"]
    assert train_main(flags) == 0
    first = torch.load(output / "checkpoints" / "last.ckpt", weights_only=True)
    assert train_main(["--output", str(output), "--resume", "--epochs", "3", "--num-workers", "1"]) == 0
    return {"output": output, "first": first, "metrics": json.loads((output / "metrics.json").read_text())}


def test_a_run_with_every_recipe_option_trains_and_says_what_it_reports(recipe_run):
    metrics = recipe_run["metrics"]
    assert metrics["epochs"] == 3 and 0.0 <= metrics["val_top1"] <= 1.0
    assert "largest share" in metrics["train_top1_against"]
    assert "moving average" in metrics["weights"]


def test_checkpoints_hold_the_average_as_weights_and_the_training_weights_for_resume(recipe_run):
    checkpoint = recipe_run["first"]
    averaged, training = checkpoint["state_dict"], checkpoint["training_state_dict"]
    assert averaged.keys() == training.keys()
    assert any(not torch.equal(averaged[k], training[k]) for k in averaged if averaged[k].is_floating_point())
    assert "moving average" in checkpoint["cbam3d"]["weights"]
    model, _ = load_checkpoint(recipe_run["output"] / "checkpoints" / "last.ckpt")
    weight_name = next(name for name in averaged if name.endswith("weight"))
    resumed = torch.load(recipe_run["output"] / "checkpoints" / "last.ckpt", weights_only=True)
    assert torch.equal(dict(model.state_dict())[weight_name.removeprefix("model.")], resumed["state_dict"][weight_name])
