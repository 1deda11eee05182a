"""docs/examples/brain_tissue_segmentation.py at a tiny size on the CPU: Dice on the held-out block rises well
above its start, a second call reuses the finished runs, and every network takes every attention."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("monai")
pytest.importorskip("nilearn")

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "brain_tissue_segmentation.py"
TINY = ["--network", "unet", "--attention", "none", "cbam", "--seeds", "0", "--steps", "60", "--patch", "16",
        "--width", "8", "--threads", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def example(load_script):
    return load_script(EXAMPLE)


@pytest.fixture(scope="module")
def tiny_grid(example, tmp_path_factory):
    """The tiny grid trained once: (its output folder, what main returned)."""
    output = tmp_path_factory.mktemp("brain")
    return output, example.main([*TINY, "--output", str(output)])


def test_dice_on_the_validation_block_rises_well_above_its_start(tiny_grid):
    _, outcome = tiny_grid
    assert [(r["attention"], r["seed"]) for r in outcome["runs"]] == [("none", 0), ("cbam", 0)]
    for result in outcome["runs"]:
        assert result["dice"] > result["dice_before"] + 0.15, result
        assert result["loss_last"] < result["loss_first"]
        assert result["dice"] == pytest.approx((result["dice_grey"] + result["dice_white"]) / 2)
    assert outcome["runs"][1]["parameters"] > outcome["runs"][0]["parameters"]  # CBAM was added


def test_the_grid_writes_the_ablation_report_and_the_slice_figure(tiny_grid):
    output, _ = tiny_grid
    for name in ("results.png", "slices.png"):
        assert (output / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (output / "results.md").read_text()
    assert "| unet-none | 1 |" in table and "| unet-cbam | 1 |" in table
    assert "Dice vs none (95% CI)" in table and "2 finished runs of 2 in the grid." in table
    stored = json.loads((output / "results.json").read_text())
    assert [entry["configuration"] for entry in stored["summary"]] == ["unet-none", "unet-cbam"]


def test_a_second_call_reuses_the_finished_runs_without_training(example, tiny_grid, capsys):
    output, first = tiny_grid
    results = sorted(output.glob("*-seed0/result.json"))
    written = [path.stat().st_mtime_ns for path in results]
    capsys.readouterr()
    again = example.main([*TINY, "--output", str(output)])
    assert capsys.readouterr().out.count("finished earlier, reused") == 2
    assert [path.stat().st_mtime_ns for path in results] == written
    assert again["runs"] == first["runs"]


def test_a_folder_of_runs_made_with_other_settings_is_refused(example, tiny_grid, capsys):
    output, _ = tiny_grid
    with pytest.raises(SystemExit):
        example.parse_args([*TINY, "--steps", "61", "--output", str(output)])
    assert "holds a run made with other settings" in capsys.readouterr().err


@pytest.mark.parametrize("network", ["unet", "segresnet"])
def test_every_attention_is_added_to_every_network_and_keeps_the_output_shape(example, network):
    settings = example.Settings(resolution=2, patch=16, batch_size=1, steps=1, width=8, learning_rate=1e-3)
    plain = example.build_network(example.Run(network, "none", 0), settings)
    for attention in example.ATTENTIONS[1:]:
        model = example.build_network(example.Run(network, attention, 0), settings)
        assert sum(p.numel() for p in model.parameters()) > sum(p.numel() for p in plain.parameters()), attention
        assert model(torch.zeros(1, 1, 16, 16, 16)).shape == (1, 3, 16, 16, 16)


def test_tissue_labels_take_the_most_probable_of_rest_grey_and_white(example):
    grey = np.array([0.6, 0.2, 0.1, 0.45])
    white = np.array([0.3, 0.7, 0.1, 0.45])
    assert example.tissue_labels(grey, white).tolist() == [1, 2, 0, 1]  # a tie goes to the first


def test_bad_sizes_are_refused_with_one_line(example, capsys):
    with pytest.raises(SystemExit):
        example.parse_args(["--patch", "20"])
    assert "--patch must be a multiple of 8" in capsys.readouterr().err


def test_time_steps_times_every_configuration_side_by_side_without_training(example, tmp_path, capsys):
    outcome = example.main([*TINY, "--attention", "none", "se", "--time-steps", "2", "--output", str(tmp_path)])
    assert set(outcome["milliseconds_per_step"]) == {"unet-none", "unet-se"}
    assert all(ms > 0 for ms in outcome["milliseconds_per_step"].values())
    assert outcome["ratio_to_no_attention"]["unet-none"] == 1.0
    assert json.loads((tmp_path / "step_times.json").read_text())["steps"] == 2
    assert not list(tmp_path.glob("*-seed*")), "timing trains nothing"
    assert "unet-se: " in capsys.readouterr().out
