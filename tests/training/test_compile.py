"""``--compile``: training, evaluation and prediction with ``torch.compile`` of the network."""

from __future__ import annotations

import json

import pytest
import torch

from cbam3d.inference.cli import evaluate_main, evaluate_parser, predict_main, predict_parser
from cbam3d.training.cli import train_main
from cbam3d.training.settings import resolve_config


def test_compile_is_off_unless_asked_for(config_from_flags):
    """Without the flag nothing is compiled (training, evaluation and prediction); with it, all three compile."""
    assert resolve_config(config_from_flags()).compile is False
    assert config_from_flags("--compile").compile is True
    assert evaluate_parser().parse_args(["--checkpoint", "c.ckpt"]).compile is False
    assert evaluate_parser().parse_args(["--checkpoint", "c.ckpt", "--compile"]).compile is True
    assert predict_parser().parse_args(["v.mp4", "--checkpoint", "c.ckpt", "--compile"]).compile is True


@pytest.mark.slow
def test_compiled_training_evaluation_and_prediction_run_and_agree_with_eager(
    tmp_path, make_tiny_dataset, tiny_run, capsys
):
    """A tiny run trains with --compile (checkpoint names unchanged, so eager code loads it); evaluation and
    prediction with --compile give the eager numbers (several minutes: inductor compiles on the CPU)."""
    pytest.importorskip("lightning")
    pytest.importorskip("av")
    data = make_tiny_dataset(tmp_path / "data")
    output = tmp_path / "run"
    assert train_main(["--data", str(data), "--output", str(output), "--epochs", "1", "--compile", *tiny_run]) == 0
    checkpoint = str(output / "checkpoints" / "last.ckpt")
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert not any("_orig_mod" in key for key in state)
    capsys.readouterr()

    videos = [str(p) for p in sorted((data / "move_left").glob("*.mp4"))[:2]]
    predictions = {}
    for flags in ([], ["--compile"]):
        assert predict_main([*videos, "--checkpoint", checkpoint, "--json", "--device", "cpu", *flags]) == 0
        predictions[bool(flags)] = json.loads(capsys.readouterr().out)
    for eager, compiled in zip(predictions[False], predictions[True]):
        assert [t["label"] for t in eager["top"]] == [t["label"] for t in compiled["top"]]
        for a, b in zip(eager["top"], compiled["top"]):
            assert a["probability"] == pytest.approx(b["probability"], abs=1e-4)

    reports = {}
    for flags in ([], ["--compile"]):
        folder = tmp_path / f"evaluation{len(flags)}"
        argv = ["--checkpoint", checkpoint, "--device", "cpu", "--output", str(folder), *flags]
        assert evaluate_main(argv) == 0
        reports[bool(flags)] = json.loads((folder / "evaluation.json").read_text())
    assert reports[True]["top1"] == reports[False]["top1"]
    assert reports[True]["confusion"] == reports[False]["confusion"]
