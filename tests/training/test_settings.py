"""The training settings, each declared once on TrainConfig: the train command's flags, the config of parsed
arguments, the help's defaults, resolving and resuming are all derived from the declarations."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from cbam3d.training.cli import train_parser
from cbam3d.training.declaration import at_least_zero, finite, setting
from cbam3d.training.settings import TrainConfig, resolve_config
from cbam3d.utils.errors import UsageError


def test_no_flags_means_every_setting_is_not_given(config_from_flags):
    config = config_from_flags()
    assert all(getattr(config, f.name) is None for f in fields(TrainConfig) if "setting" in f.metadata)


def test_every_setting_has_a_flag_and_the_programmatic_fields_have_none():
    options = {option for action in train_parser()._actions for option in action.option_strings}
    names = {f.name for f in fields(TrainConfig) if "setting" in f.metadata}
    assert {TrainConfig.flag(name) for name in names} <= options
    assert {f.name for f in fields(TrainConfig)} - names == {"callbacks", "trainer_options"}
    assert "--callbacks" not in options and "--trainer-options" not in options


@pytest.mark.parametrize(
    "argv, name, value",
    [
        (["--flip", "on"], "horizontal_flip", True),
        (["--flip", "off"], "horizontal_flip", False),
        (["--flip", "auto"], "horizontal_flip", None),
        (["--train-scale", "1", "1.5"], "train_scale", (1.0, 1.5)),
        (
            ["--attention-option", "reduction=8", "--attention-option", "kernel_size=(3,7,7)"],
            "attention_kwargs",
            {"reduction": 8, "kernel_size": (3, 7, 7)},
        ),
        (["--model-option", "widen_factor=0.5"], "model_options", {"widen_factor": 0.5}),
        (["--resume"], "resume", True),
        (["--resume", "run/last.ckpt"], "resume", Path("run/last.ckpt")),
        (["--sync-bn"], "sync_bn", True),
        (["--lr", "0.01"], "lr", 0.01),
        (["--data", "videos"], "data", Path("videos")),
    ],
)
def test_each_kind_of_flag_gives_the_setting_its_value(argv, name, value, config_from_flags):
    assert getattr(config_from_flags(*argv), name) == value


def test_no_data_means_the_demo_defaults_and_given_values_win():
    demo = resolve_config(TrainConfig())
    assert demo.attention == "cbam" and demo.data is None and demo.horizontal_flip is None
    assert demo.size < 112 and demo.model == "resnet3d-10"
    given = resolve_config(TrainConfig(size=40, attention="none"))
    assert given.size == 40 and given.attention == "none"


def test_a_data_set_gets_the_general_defaults(tmp_path):
    config = resolve_config(TrainConfig(data=tmp_path))
    assert (config.frames, config.size, config.model, config.optimizer) == (16, 112, "resnet3d-18", "sgd")
    assert config.lr == 0.05 and config.weight_decay == 1e-4


def test_defaults_by_data_demo_set_and_optimizer(tmp_path):
    real = resolve_config(TrainConfig(data=tmp_path))
    assert (real.epochs, real.frames, real.lr, real.weight_decay, real.horizontal_flip) == (50, 16, 0.05, 1e-4, None)
    assert resolve_config(TrainConfig(data=tmp_path, optimizer="adamw")).weight_decay == 0.05
    demo = resolve_config(TrainConfig())
    assert (demo.epochs, demo.frames, demo.lr, demo.optimizer, demo.resume) == (16, 8, 3e-3, "adamw", False)
    hard = resolve_config(TrainConfig(demo="hard"))
    assert (hard.epochs, hard.demo_videos, hard.frames) == (10, 120, 8)


def test_resolving_leaves_the_declared_defaults_unchanged():
    first = resolve_config(TrainConfig())
    first.model_options["widen_factor"] = 4.0
    assert resolve_config(TrainConfig()).model_options["widen_factor"] == 0.25


def test_the_train_command_takes_the_hard_demo_with_its_own_budget(config_from_flags):
    hard = resolve_config(config_from_flags("--demo", "hard"))
    standard = resolve_config(config_from_flags())
    assert (hard.demo, hard.epochs, hard.demo_videos) == ("hard", 10, 120)
    assert (standard.demo, standard.epochs) == ("standard", 16)


def test_a_resumed_run_keeps_its_own_settings_unless_given_again(tmp_path):
    stored = resolve_config(TrainConfig(data=tmp_path, size=64, epochs=7)).to_dict()
    resumed = resolve_config(TrainConfig(epochs=9), resumed=stored)
    assert resumed.data == tmp_path and resumed.size == 64 and resumed.epochs == 9


def test_a_resumed_run_keeps_its_recipe_but_not_its_hardware(tmp_path):
    stored = resolve_config(TrainConfig(data=tmp_path, frames=4, num_workers=0, train_scale=(1.0, 1.1))).to_dict()
    resumed = resolve_config(TrainConfig(), resumed=stored)
    assert resumed.data == tmp_path and resumed.frames == 4 and resumed.train_scale == (1.0, 1.1)
    assert resumed.num_workers == TrainConfig(data=tmp_path).default_for("num_workers")


def test_help_shows_general_demo_and_hard_demo_defaults():
    helps = {action.option_strings[0]: action.help for action in train_parser()._actions}
    assert helps["--frames"] == "frames per clip; default: 16; 8 on the demo set"
    assert helps["--epochs"].endswith("default: 50; 16 on the demo set; 10 on the hard demo set")
    assert "(its own defaults: --demo-videos 120, --epochs 10)" in helps["--demo"]
    assert helps["--lr"] == "peak learning rate; default: 0.05 with sgd, 0.001 with adamw; 0.003 on the demo set"
    assert helps["--flip"].endswith("default: auto") and "default" not in helps["--sync-bn"]


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(epochs=0), "--epochs"),
        (dict(batch_size=-2), "--batch-size"),
        (dict(lr=0.0), "--lr"),
        (dict(label_smoothing=1.0), "--label-smoothing"),
        (dict(attention="gcnet"), "--attention"),
        (dict(model="resnet3d-11"), "resnet3d-18"),
        (dict(data=Path("/no/such/folder")), "no such directory"),
        (dict(pretrained=Path("/no/such.pth")), "--pretrained"),
        (dict(optimizer="lamb"), "--optimizer"),
        (dict(warmup_epochs=float("nan")), "--warmup-epochs must be a finite number, got nan"),
        (dict(label_smoothing=-0.1), "--label-smoothing must be in [0, 1), got -0.1"),
        (dict(train_scale=(1.2, 1.1)), "--train-scale must be two numbers 1 <= LOW <= HIGH, got 1.2 1.1"),
        (dict(horizontal_flip="yes"), "--flip must be one of auto, on, off, got 'yes'"),
        (dict(attention_kwargs={}, demo="hard", data=Path(".")), "--demo hard chooses a generated demo set"),
        (dict(num_workers=-1), "--num-workers must be 0 or more, got -1"),
        (dict(threads=0), "--threads must be a positive integer, got 0"),
        (dict(augment="autoaugment"), "--augment must be one of none, randaugment, trivialaugment"),
        (dict(augment="randaugment", augment_magnitude=31), "--augment-magnitude must be an integer from 0 to 30"),
        (dict(augment_magnitude=5), "--augment-magnitude applies to --augment randaugment only"),
        (dict(random_erase=1.5), "--random-erase must be a probability in [0, 1], got 1.5"),
        (dict(mixup=-0.2), "--mixup must be 0 or more, got -0.2"),
        (dict(cutmix=float("inf")), "--cutmix must be a finite number, got inf"),
        (dict(ema=1.0), "--ema must be in [0, 1), got 1.0"),
        (dict(precise_bn=-3), "--precise-bn must be 0 (off) or a positive integer, got -3"),
        (dict(class_balanced=True, multi_label=True), "--class-balanced draws by the single label of each video"),
    ],
)
def test_bad_settings_are_refused_naming_the_flag(change, message):
    with pytest.raises(UsageError) as error:
        resolve_config(TrainConfig(**change))
    assert message in str(error.value)


@dataclass
class WithDropout(TrainConfig):
    """TrainConfig and one more setting, declared as the module's docstring says a new one is."""

    dropout: float | None = setting(
        "optimisation",
        "dropout before the classifier",
        general=0.0,
        demo=0.2,
        metavar="P",
        checks=(finite, at_least_zero),
    )


def test_a_new_setting_is_one_declaration():
    """One field gives the flag in its group with its defaults in the help, the parsed value, the defaults,
    the checks, the checkpoint entry and the value kept on resume."""
    parser = argparse.ArgumentParser()
    WithDropout.add_arguments(parser)
    group = next(g for g in parser._action_groups if g.title == "optimisation")
    dropout = next(action for action in group._group_actions if action.dest == "dropout")
    assert dropout.option_strings == ["--dropout"] and dropout.metavar == "P"
    assert dropout.help == "dropout before the classifier; default: 0.0; 0.2 on the demo set"
    assert WithDropout.from_arguments(parser.parse_args(["--dropout", "0.4"])).dropout == 0.4
    assert resolve_config(WithDropout()).dropout == 0.2
    with pytest.raises(UsageError, match="--dropout must be a finite number, got nan"):
        resolve_config(WithDropout(dropout=float("nan")))
    stored = resolve_config(WithDropout(dropout=0.3)).to_dict()
    assert stored["dropout"] == 0.3 and resolve_config(WithDropout(), resumed=stored).dropout == 0.3


@pytest.mark.parametrize(
    "word, value", [("false", False), ("FALSE", False), ("no", False), ("0", False), ("True", True), ("yes", True)]
)
def test_boolean_network_options_parse_as_booleans_in_any_case(config_from_flags, word, value):
    """``no_max_pool=false`` is False (never the truthy text 'false'); the same for attention options."""
    argv = ("--model-option", f"no_max_pool={word}", "--attention-option", f"spatial={word}")
    resolved = resolve_config(config_from_flags(*argv))
    assert resolved.model_options["no_max_pool"] is value
    assert resolved.attention_kwargs["spatial"] is value


@pytest.mark.parametrize("word", ["maybe", "2", "none"])
def test_a_boolean_network_option_given_another_value_is_refused_naming_it(config_from_flags, word):
    with pytest.raises(UsageError, match=rf"--model-option no_max_pool=.*{word}.*expected true/false"):
        resolve_config(config_from_flags("--model-option", f"no_max_pool={word}"))
