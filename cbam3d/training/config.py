"""The settings of a training run, their defaults and their validation.

Every field of :class:`TrainConfig` may be left as ``None``; :func:`resolve_config` fills it, in this order,
from the run being resumed (so ``--resume`` alone continues a run with its own settings), from the demo-set
defaults when no ``--data`` is given, and from the general defaults.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cbam3d.attention.registry import attention_names
from cbam3d.data import DEMO_VARIANTS
from cbam3d.models import MODEL_NAMES
from cbam3d.utils.atomic import check_output_folder
from cbam3d.utils.errors import UsageError

__all__ = [
    "DEMO_DEFAULTS",
    "GENERAL_DEFAULTS",
    "HARD_DEMO_DEFAULTS",
    "OPTIMIZERS",
    "PRECISIONS",
    "TrainConfig",
    "UsageError",
    "check_precision_fits",
    "resolve_config",
]


def attention_choices() -> tuple[str, ...]:
    """``--attention``'s choices: ``"none"`` and every attention registered with ``cbam3d.register_attention``."""
    return ("none", *attention_names())


OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true")
REDUCED_PRECISIONS = ("bf16-mixed", "16-mixed", "bf16-true", "16-true")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")


@dataclass
class TrainConfig:
    """Everything a training run needs. ``None`` means "not given": see :func:`resolve_config`."""

    data: Path | None = None
    demo_videos: int | None = None  # training videos per class of the generated demo set (no --data)
    demo: str | None = None  # which generated demo set without --data: "standard" or "hard"
    annotations: Path | None = None
    fold: int | None = None
    output: Path | None = None
    model: str | None = None
    attention: str | None = None
    attention_kwargs: dict[str, Any] | None = None
    model_options: dict[str, Any] | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    warmup_epochs: float | None = None
    label_smoothing: float | None = None
    accumulate: int | None = None
    frames: int | None = None
    sampling_rate: int | None = None
    size: int | None = None
    eval_clips: int | None = None
    eval_crops: int | None = None
    train_scale: tuple[float, float] | None = None
    horizontal_flip: bool | None = None  # None: flip unless the data set says flipping changes labels
    devices: int | None = None
    num_nodes: int | None = None
    accelerator: str | None = None
    precision: str | None = None
    sync_bn: bool | None = None
    compile: bool | None = None  # torch.compile the network
    num_workers: int | None = None
    seed: int | None = None
    resume: bool | Path = False
    pretrained: Path | None = None
    threads: int | None = None
    callbacks: list[Any] = field(default_factory=list)  # more Lightning callbacks, for programmatic use
    trainer_options: dict[str, Any] = field(default_factory=dict)  # more Trainer keyword arguments

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy (paths as strings) of the settings, stored in checkpoints."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name in ("callbacks", "trainer_options"):
                continue
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out


# Defaults for a real data set (UCF101, HMDB51, Kinetics) on a GPU: the usual 16x112x112 clips.
GENERAL_DEFAULTS: dict[str, Any] = dict(
    demo_videos=300,  # used without --data only: training videos per class of the generated demo set
    demo="standard",  # used without --data only: which generated demo set
    fold=1,
    output=Path("runs/train"),
    model="resnet3d-18",
    attention="cbam",
    attention_kwargs={},
    model_options={},
    epochs=50,
    batch_size=16,
    lr=None,  # depends on the optimizer, see _DEFAULT_LR
    optimizer="sgd",
    weight_decay=None,  # depends on the optimizer, see _DEFAULT_WEIGHT_DECAY
    warmup_epochs=2.0,
    label_smoothing=0.1,
    accumulate=1,
    frames=16,
    sampling_rate=4,
    size=112,
    train_scale=(8 / 7, 10 / 7),
    eval_clips=10,
    eval_crops=3,
    devices=1,
    num_nodes=1,
    accelerator="auto",
    precision="auto",
    sync_bn=False,
    compile=False,
    num_workers=min(8, os.cpu_count() or 1),
    seed=0,
    threads=None,
)

# Defaults when no --data is given: the built-in demo set (64x64, 16-frame clips, 8 motion classes) on a CPU in
# a few minutes. (Its classes include left and right motion: the data set says so, and training clips are
# then not flipped; see ``horizontal_flip``.)
DEMO_DEFAULTS: dict[str, Any] = dict(
    output=Path("runs/demo"),
    model="resnet3d-10",
    model_options={"widen_factor": 0.25, "no_max_pool": True, "conv1_t_size": 3},
    epochs=16,
    batch_size=16,
    optimizer="adamw",
    lr=3e-3,
    warmup_epochs=1.0,
    frames=8,
    sampling_rate=2,
    size=32,
    train_scale=(1.0, 1.15),
    eval_clips=2,
    eval_crops=1,
    num_workers=1,
)

# The hard demo set (``--demo hard``) differs from the standard one in its size and its training budget; its
# budget puts a plain network well below the ceiling (see cbam3d.data.demo and docs/results.md).
HARD_DEMO_DEFAULTS: dict[str, Any] = dict(demo_videos=120, epochs=10)

_DEFAULT_LR = {"sgd": 0.05, "adamw": 1e-3}
_DEFAULT_WEIGHT_DECAY = {"sgd": 1e-4, "adamw": 0.05}

# Settings that describe the network and its input: a resumed run keeps them from its checkpoint.
_KEPT_ON_RESUME = (
    "data",
    "demo_videos",
    "demo",
    "annotations",
    "fold",
    "model",
    "attention",
    "attention_kwargs",
    "model_options",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "weight_decay",
    "warmup_epochs",
    "label_smoothing",
    "accumulate",
    "frames",
    "sampling_rate",
    "size",
    "train_scale",
    "eval_clips",
    "eval_crops",
    "horizontal_flip",
    "seed",
)


def resolve_config(config: TrainConfig, resumed: dict[str, Any] | None = None) -> TrainConfig:
    """Fill every ``None`` of ``config`` and check the values.

    Args:
        config: the settings given (``None`` for those not given).
        resumed: the ``config`` dict stored in the checkpoint of the run being resumed, if any; its settings
            are used for those not given, so an interrupted run continues as it was started.

    Raises:
        UsageError: on a value out of range or of an unknown name.
    """
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    if resumed:
        for key in _KEPT_ON_RESUME:
            if values.get(key) is None and resumed.get(key) is not None:
                values[key] = resumed[key]
    demo = values["data"] is None
    hard = demo and values["demo"] == "hard"
    for key, default in GENERAL_DEFAULTS.items():
        if values[key] is None:
            values[key] = (HARD_DEMO_DEFAULTS if hard else {}).get(
                key, DEMO_DEFAULTS.get(key, default) if demo else default
            )
    if values["lr"] is None:
        values["lr"] = _DEFAULT_LR.get(values["optimizer"], 1e-3)
    if values["weight_decay"] is None:
        values["weight_decay"] = _DEFAULT_WEIGHT_DECAY.get(values["optimizer"], 0.0)
    for key in ("data", "annotations", "output", "pretrained"):
        if values[key] is not None:
            values[key] = Path(values[key]).expanduser()
    values["train_scale"] = tuple(float(v) for v in values["train_scale"])
    if isinstance(values["resume"], str):
        values["resume"] = Path(values["resume"]).expanduser()
    resolved = TrainConfig(**values)
    _check(resolved)
    return resolved


def _check(config: TrainConfig) -> None:
    """Raise :class:`UsageError` naming the first setting that is out of range."""
    positive = (
        "demo_videos",
        "epochs",
        "batch_size",
        "accumulate",
        "frames",
        "sampling_rate",
        "size",
        "eval_clips",
        "eval_crops",
        "devices",
        "num_nodes",
        "fold",
    )
    for name in positive:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or not 0 <= config.seed < 2**32:
        raise UsageError(f"--seed must be an integer from 0 to {2**32 - 1}, got {config.seed!r}")
    if config.num_workers < 0:
        raise UsageError(f"--num-workers must be 0 or more, got {config.num_workers}")
    if config.threads is not None and config.threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {config.threads}")
    _check_finite(config)
    if not config.lr > 0:
        raise UsageError(f"--lr must be positive, got {config.lr}")
    if config.weight_decay < 0:
        raise UsageError(f"--weight-decay must be 0 or more, got {config.weight_decay}")
    if config.warmup_epochs < 0:
        raise UsageError(f"--warmup-epochs must be 0 or more, got {config.warmup_epochs}")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise UsageError(f"--label-smoothing must be in [0, 1), got {config.label_smoothing}")
    low, high = config.train_scale
    if not 1.0 <= low <= high:
        raise UsageError(f"--train-scale must be two numbers 1 <= LOW <= HIGH, got {low} {high}")
    if config.optimizer not in OPTIMIZERS:
        raise UsageError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {config.optimizer!r}")
    if config.attention not in attention_choices():
        raise UsageError(f"--attention must be one of {', '.join(attention_choices())}, got {config.attention!r}")
    if config.demo not in DEMO_VARIANTS:
        raise UsageError(f"--demo must be one of {', '.join(DEMO_VARIANTS)}, got {config.demo!r}")
    if config.data is not None and config.demo != "standard":
        raise UsageError(f"--demo {config.demo} chooses a generated demo set: leave out --data, or leave out --demo")
    if config.precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {config.precision!r}")
    if config.accelerator not in ACCELERATORS:
        raise UsageError(f"--accelerator must be one of {', '.join(ACCELERATORS)}, got {config.accelerator!r}")
    if config.data is not None and not config.data.is_dir():
        raise UsageError(f"--data {config.data}: no such directory")
    if config.annotations is not None and not config.annotations.is_file():
        raise UsageError(f"--annotations {config.annotations}: no such file")
    if config.pretrained is not None and not config.pretrained.is_file():
        raise UsageError(f"--pretrained {config.pretrained}: no such file")
    try:
        check_output_folder(config.output)
    except ValueError as error:
        raise UsageError(f"--output {error}") from error
    _check_model_name(config.model)


def _check_finite(config: TrainConfig) -> None:
    """inf and nan pass range checks written as comparisons (``inf > 0``): refuse them by name."""
    for name in ("lr", "weight_decay", "warmup_epochs", "label_smoothing", "train_scale"):
        value = getattr(config, name)
        if not all(math.isfinite(v) for v in (value if isinstance(value, tuple) else (value,))):
            raise UsageError(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")


def check_precision_fits(precision: str, accelerator: str) -> None:
    """Refuse reduced precision on a CPU, where torch's fp16 / bf16 3D convolution backward hangs or crashes.

    Raises:
        UsageError: ``precision`` is a 16-bit one and ``accelerator`` is ``"cpu"``.
    """
    if accelerator == "cpu" and precision in REDUCED_PRECISIONS:
        raise UsageError(
            f"--precision {precision} does not run on the CPU (torch's 16-bit 3D convolutions hang or crash "
            "there): use --precision 32-true (or auto), or train on a GPU"
        )


def _check_model_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise UsageError(f"--model {name!r} is not a known model; choose one of: {', '.join(MODEL_NAMES)}")
