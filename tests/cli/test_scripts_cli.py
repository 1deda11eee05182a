"""The command lines of scripts/train.py, evaluate.py and predict.py: help for every flag, one-line errors."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning")

from cbam3d.inference.cli import evaluate_main, evaluate_parser, predict_main, predict_parser
from cbam3d.training.cli import train_main, train_parser

REPO = Path(__file__).resolve().parents[2]
REQUIRED_TRAIN_FLAGS = (
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


@pytest.mark.parametrize("make_parser", [train_parser, evaluate_parser, predict_parser])
def test_every_flag_of_every_script_has_help_text(make_parser):
    parser = make_parser()
    undocumented = [
        action.option_strings or action.dest
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]
    assert undocumented == []


def test_train_offers_the_flags_the_issue_names():
    options = {option for action in train_parser()._actions for option in action.option_strings}
    assert set(REQUIRED_TRAIN_FLAGS) <= options


def test_train_help_says_what_happens_without_data():
    text = train_parser().format_help()
    assert "demo set" in text and "torchrun" in text


def test_the_scripts_run_as_programs():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train.py"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--attention {none,bam,cbam,eca,se}" in result.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "/no/such/folder"], "--data /no/such/folder: no such directory"),
        (["--model", "resnet3d-11"], "--model 'resnet3d-11' is not a known model"),
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--attention", "gcnet"], "invalid choice: 'gcnet'"),
        (["--model-option", "not a pair"], "expected KEY=VALUE"),
    ],
)
def test_train_rejects_bad_flags_with_one_line(argv, message, usage_error):
    assert message in usage_error(train_main, argv)


def test_train_resume_without_a_previous_run_says_there_is_nothing_to_resume(tmp_path, usage_error):
    line = usage_error(train_main, ["--output", str(tmp_path / "new"), "--resume"])
    assert "nothing to resume" in line and "last.ckpt" in line


def test_train_on_a_folder_without_videos_says_so(tmp_path, usage_error):
    (tmp_path / "empty_class").mkdir()
    line = usage_error(train_main, ["--data", str(tmp_path), "--output", str(tmp_path / "out")])
    assert str(tmp_path) in line


def test_evaluate_and_predict_reject_a_missing_checkpoint_with_one_line(tmp_path, usage_error):
    missing = str(tmp_path / "missing.ckpt")
    assert "no such file" in usage_error(evaluate_main, ["--checkpoint", missing])
    assert "no such file" in usage_error(predict_main, ["clip.mp4", "--checkpoint", missing])


def test_predict_rejects_a_checkpoint_that_is_not_ours(tmp_path, usage_error):
    import torch

    torch.save({"weight": torch.ones(1)}, tmp_path / "weights.pth")
    line = usage_error(predict_main, ["clip.mp4", "--checkpoint", str(tmp_path / "weights.pth")])
    assert "not a cbam3d training checkpoint" in line


def test_train_refuses_sync_bn_for_cpu_processes(tmp_path, usage_error):
    line = usage_error(train_main, ["--data", str(tmp_path), "--accelerator", "cpu", "--devices", "2", "--sync-bn"])
    assert "--sync-bn needs GPUs" in line
