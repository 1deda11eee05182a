"""The settings of a training run, each declared once: :class:`TrainConfig`.

Each field of :class:`TrainConfig` is one setting. Its annotation is its type; its
:func:`~cbam3d.training.declaration.setting` declares the rest: the argument group and help of its
``cbam3d train`` flag, its defaults (for a real data set, and on the demo sets where they differ), its checks
and whether a resumed run keeps it (by default it does). Everything else is derived:
the train command's flags (:meth:`TrainConfig.add_arguments`), the config of parsed arguments
(:meth:`TrainConfig.from_arguments`), the "default: ..." of each help text, the defaults and checks of
:func:`resolve_config` and what a checkpoint stores (:meth:`TrainConfig.to_dict`).

Adding a setting is one edit, a field of :class:`TrainConfig`::

    dropout: float | None = setting(
        "model", "dropout before the classifier (0: off)", general=0.0, metavar="P", checks=(finite, probability)
    )

would give ``--dropout P`` in the model group of ``cbam3d train --help`` ("dropout before the classifier (0: off);
default: 0.0"), ``config.dropout`` (``None`` when not given, 0.0 once resolved), its checks (``--dropout must be
a finite number, got nan``), its place in checkpoints and its value kept by a resumed run.

What the annotation makes of a flag (``None`` aside): ``bool`` a switch; ``int``, ``float``, ``str``,
``Path`` one value; ``tuple[float, float]`` two values; ``dict[str, Any]`` a repeatable ``KEY=VALUE``.
``choices`` given as a mapping turns the flag's words into values (``--flip on`` -> ``True``); ``const``
lets the value be left out (``--resume`` alone -> ``True``).

Every field may be left ``None`` ("not given"); :func:`resolve_config` fills it, in this order, from the run
being resumed (the settings it keeps), from the demo-set defaults when no ``--data`` is given,
and from the general defaults.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cbam3d.attention.registry import attention_names
from cbam3d.data import AUGMENTATIONS, DEMO_VARIANTS
from cbam3d.data.decoders import available_decoders
from cbam3d.data.transforms import MAGNITUDE_BINS
from cbam3d.models import MODEL_NAMES
from cbam3d.utils.atomic import check_output_folder
from cbam3d.utils.errors import UsageError

from .declaration import (
    Depends,
    at_least_zero,
    declared_settings,
    existing_file,
    existing_folder,
    finite,
    positive,
    positive_integer,
    probability,
    setting,
    zero_or_positive_integer,
)
from .resolving import REDUCED_PRECISIONS, check_precision_fits, demo_set, resolve_config, setting_named

__all__ = [
    "ACCELERATORS",
    "OPTIMIZERS",
    "PRECISIONS",
    "REDUCED_PRECISIONS",
    "TrainConfig",
    "UsageError",
    "attention_choices",
    "check_precision_fits",
    "resolve_config",
]

OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")
_MAX_WORKERS = 8


def attention_choices() -> tuple[str, ...]:
    """``--attention``'s choices: ``"none"`` and every attention registered with ``cbam3d.register_attention``."""
    return ("none", *attention_names())


# --- the checks of single settings (the general ones are in .declaration) ---------------------------------


def _writable_folder(path: Path) -> str | None:
    try:
        check_output_folder(path)
    except ValueError as error:
        return str(error)
    return None


def _fraction(value: float) -> str | None:
    return None if 0.0 <= value < 1.0 else f"must be in [0, 1), got {value}"


def _magnitude_range(value: Any) -> str | None:
    within = not isinstance(value, bool) and isinstance(value, int) and 0 <= value < MAGNITUDE_BINS
    return None if within else f"must be an integer from 0 to {MAGNITUDE_BINS - 1}, got {value!r}"


def _scale_range(scale: tuple[float, float]) -> str | None:
    low, high = scale
    return None if 1.0 <= low <= high else f"must be two numbers 1 <= LOW <= HIGH, got {low} {high}"


def _seed_range(seed: Any) -> str | None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        return f"must be an integer from 0 to {2**32 - 1}, got {seed!r}"
    return None


def _known_model(name: str) -> str | None:
    return None if name in MODEL_NAMES else f"{name!r} is not a known model; choose one of: {', '.join(MODEL_NAMES)}"


def _hard_demo_defaults() -> str:
    """``--demo-videos 120, --epochs 10``: the hard demo set's own defaults."""
    settings = declared_settings(TrainConfig)
    return ", ".join(f"{s.flag} {s.declaration.hard_demo}" for s in settings if s.declaration.hard_demo is not None)


@dataclass
class TrainConfig:
    """Everything a training run needs. ``None`` means "not given": see :func:`resolve_config`."""

    # data
    data: Path | None = setting(
        "data",
        "data set folder: a folder per class (UCF101 / HMDB51, with their split lists when present) or videos "
        "listed by --annotations (Kinetics)",
        default_text="the built-in demo set",
        metavar="DIR",
        checks=(existing_folder,),
    )
    demo_videos: int | None = setting(
        "data",
        "without --data: training videos per class of the generated demo set (8 classes; its test list has the "
        "generator's default size)",
        general=300,
        hard_demo=120,
        metavar="N",
        checks=(positive_integer,),
    )
    demo: str | None = setting(
        "data",
        lambda: (
            "without --data: which generated demo set; hard: distractors that perform class motions themselves, "
            f"so the target must be found (its own defaults: {_hard_demo_defaults()})"
        ),
        general="standard",
        choices=DEMO_VARIANTS,
    )
    annotations: Path | None = setting(
        "data",
        "annotation file: a Kinetics-style CSV (path,label; path,labels for --multi-label; or "
        "youtube_id,time_start,time_end,label), or a 3D-ResNets-PyTorch JSON (ucf101_01.json)",
        metavar="FILE",
        checks=(existing_file,),
    )
    multi_label: bool | None = setting(
        "data",
        "multi-label classification: a sigmoid per class and binary cross-entropy (--label-smoothing smooths each "
        "class's target towards 1/2), for CSVs whose labels column gives each video several classes (a;b); "
        "scored by val_map (mean average precision), which picks the best checkpoint",
        general=False,
    )
    fold: int | None = setting(
        "data", "official split number of UCF101 / HMDB51", general=1, metavar="N", checks=(positive_integer,)
    )
    frames: int | None = setting("data", "frames per clip", general=16, demo=8, metavar="T", checks=(positive_integer,))
    sampling_rate: int | None = setting(
        "data", "take every S-th frame of the video", general=4, demo=2, metavar="S", checks=(positive_integer,)
    )
    size: int | None = setting(
        "data", "clip height and width", general=112, demo=32, metavar="PX", checks=(positive_integer,)
    )
    train_scale: tuple[float, float] | None = setting(
        "data",
        "training clips: short side resized to a random length in [LOW, HIGH] x --size, then a random crop; "
        "evaluation: resized to LOW x --size, then centre crops",
        general=(8 / 7, 10 / 7),
        demo=(1.0, 1.15),
        metavar=("LOW", "HIGH"),
        checks=(finite, _scale_range),
    )
    horizontal_flip: bool | None = setting(
        "data",
        "random horizontal flip of training clips; auto: on unless the data set says flips change labels (off on "
        "the demo set, which has left and right motions)",
        flag="--flip",
        choices={"auto": None, "on": True, "off": False},
    )
    num_workers: int | None = setting(
        "data",
        "data-loading processes per device",
        general=min(_MAX_WORKERS, os.cpu_count() or 1),
        demo=1,
        default_text=f"the CPU cores, at most {_MAX_WORKERS} ({min(_MAX_WORKERS, os.cpu_count() or 1)} here)",
        metavar="N",
        checks=(at_least_zero,),
        kept_on_resume=False,
    )
    clips_per_decode: int | None = setting(
        "data",
        "training clips taken from one decode of a video, each at its own position in a window twice a clip's "
        "span, with its own crop and flip; each counts as one clip of --batch-size, which must be a multiple of K",
        general=1,
        metavar="K",
        checks=(positive_integer,),
    )
    decoder: str | None = setting(
        "data",
        "video decoder (decord when its package is installed)",
        general="pyav",
        choices=available_decoders,
        kept_on_resume=False,
    )
    # model
    model: str | None = setting(
        "model",
        "network: resnet3d-10/18/34/50/101/152/200, r2plus1d-10..200, r3d_18, mc3_18, r2plus1d_18",
        general="resnet3d-18",
        demo="resnet3d-10",
        metavar="NAME",
        checks=(_known_model,),
    )
    attention: str | None = setting(
        "model", "attention module in the network", general="cbam", choices=attention_choices
    )
    attention_kwargs: dict[str, Any] | None = setting(
        "model",
        "keyword argument of the attention module, e.g. reduction=8 or kernel_size=(3,7,7); repeatable",
        general={},
        flag="--attention-option",
        metavar="KEY=VALUE",
    )
    model_options: dict[str, Any] | None = setting(
        "model",
        "keyword argument of the network, e.g. widen_factor=0.5 or no_max_pool=True; repeatable",
        general={},
        demo={"widen_factor": 0.25, "no_max_pool": True, "conv1_t_size": 3},
        flag="--model-option",
        metavar="KEY=VALUE",
    )
    pretrained: Path | None = setting(
        "model",
        "starting weights: torchvision video-ResNet weights, 3D-ResNets-PyTorch or MedicalNet checkpoints "
        "({arch, state_dict}, module.-prefixed keys of DataParallel), a 2D (to inflate) or inflated checkpoint, or "
        "one of ours; the classifier is re-initialised when class counts differ",
        metavar="PATH",
        checks=(existing_file,),
        kept_on_resume=False,
    )
    # optimisation
    epochs: int | None = setting(
        "optimisation",
        "total number of epochs (a resumed run counts those done)",
        general=50,
        demo=16,
        hard_demo=10,
        metavar="N",
        checks=(positive_integer,),
    )
    batch_size: int | None = setting(
        "optimisation", "clips per batch and per device", general=16, metavar="N", checks=(positive_integer,)
    )
    optimizer: str | None = setting(
        "optimisation", "SGD (momentum 0.9, Nesterov) or AdamW", general="sgd", demo="adamw", choices=OPTIMIZERS
    )
    lr: float | None = setting(
        "optimisation",
        "peak learning rate",
        general=Depends("optimizer", {"sgd": 0.05, "adamw": 1e-3}),
        demo=3e-3,
        checks=(finite, positive),
    )
    weight_decay: float | None = setting(
        "optimisation",
        "weight decay (not applied to biases and norms)",
        general=Depends("optimizer", {"sgd": 1e-4, "adamw": 0.05}),
        metavar="WD",
        checks=(finite, at_least_zero),
    )
    warmup_epochs: float | None = setting(
        "optimisation",
        "linear warmup before the cosine decay",
        general=2.0,
        demo=1.0,
        metavar="E",
        checks=(finite, at_least_zero),
    )
    label_smoothing: float | None = setting(
        "optimisation",
        "label smoothing of the training cross-entropy",
        general=0.1,
        metavar="EPS",
        checks=(finite, _fraction),
    )
    accumulate: int | None = setting(
        "optimisation",
        "accumulate gradients over N batches per optimizer step",
        general=1,
        metavar="N",
        checks=(positive_integer,),
    )
    seed: int | None = setting("optimisation", "seed of every random choice", general=0, checks=(_seed_range,))
    # the training recipe: augmentation and regularisation (docs/training.md, "Training recipes")
    augment: str | None = setting(
        "recipe",
        "automatic augmentation of training clips after the crop: RandAugment (two operations at "
        "--augment-magnitude) or TrivialAugmentWide (one at a random magnitude); one draw per clip, for all frames",
        general="none",
        choices=AUGMENTATIONS,
    )
    augment_magnitude: int | None = setting(
        "recipe",
        "RandAugment's magnitude (0 to 30; --augment randaugment only)",
        general=9,
        metavar="M",
        checks=(_magnitude_range,),
    )
    random_erase: float | None = setting(
        "recipe",
        "probability of erasing a random box (the same in every frame) of a training clip, filled with the mean",
        general=0.0,
        metavar="P",
        checks=(finite, probability),
    )
    mixup: float | None = setting(
        "recipe",
        "MixUp of training batches: clips and targets blended with λ ~ Beta(ALPHA, ALPHA), smoothed by "
        "--label-smoothing; the training top-1 counts the label of the largest share; 0: off",
        general=0.0,
        metavar="ALPHA",
        checks=(finite, at_least_zero),
    )
    cutmix: float | None = setting(
        "recipe",
        "CutMix of training batches: a box of another clip pasted through all frames, targets mixed by its area "
        "share; with --mixup, each batch takes one of the two at random; 0: off",
        general=0.0,
        metavar="ALPHA",
        checks=(finite, at_least_zero),
    )
    ema: float | None = setting(
        "recipe",
        "exponential moving average of the weights with this DECAY per optimizer step (0: off); validation, the "
        "best checkpoint, the final evaluation and the saved weights (evaluate, predict, export) are the average's",
        general=0.0,
        metavar="DECAY",
        checks=(finite, _fraction),
    )
    precise_bn: int | None = setting(
        "recipe",
        "before each validation, set every BatchNorm's statistics (attention gates' too) to their average over "
        "this many training batches (precise BN); 0: off",
        general=0,
        metavar="BATCHES",
        checks=(zero_or_positive_integer,),
    )
    class_balanced: bool | None = setting(
        "recipe",
        "draw every class equally often in each epoch and on each DDP process (small classes' videos repeat); "
        "a sampler rather than a class-weighted loss, so it works with --mixup, --cutmix and label smoothing",
        general=False,
    )
    # hardware
    accelerator: str | None = setting(
        "hardware",
        "auto: a GPU when there is one, else the CPU",
        general="auto",
        choices=ACCELERATORS,
        kept_on_resume=False,
    )
    devices: int | None = setting(
        "hardware",
        "GPUs (or CPU processes) per node; N > 1 trains with DDP",
        general=1,
        default_text="1, or torchrun's",
        metavar="N",
        checks=(positive_integer,),
        kept_on_resume=False,
    )
    num_nodes: int | None = setting(
        "hardware",
        "nodes for multi-node DDP",
        general=1,
        metavar="N",
        checks=(positive_integer,),
        kept_on_resume=False,
    )
    precision: str | None = setting(
        "hardware",
        "auto: bf16-mixed on a GPU (16-mixed on GPUs without bf16), 32-true on the CPU",
        general="auto",
        choices=PRECISIONS,
        kept_on_resume=False,
    )
    sync_bn: bool | None = setting(
        "hardware",
        "synchronise BatchNorm statistics across DDP processes (small per-GPU batches)",
        general=False,
        kept_on_resume=False,
    )
    compile: bool | None = setting(
        "hardware",
        "torch.compile the network (the first steps take longer while it compiles)",
        general=False,
        kept_on_resume=False,
    )
    threads: int | None = setting(
        "hardware",
        "CPU threads of each training process",
        default_text="the available cores / devices",
        metavar="N",
        checks=(positive_integer,),
        kept_on_resume=False,
    )
    # run
    output: Path | None = setting(
        "run",
        "folder for checkpoints, logs, curves.png and metrics.json",
        general=Path("runs/train"),
        demo=Path("runs/demo"),
        metavar="DIR",
        checks=(_writable_folder,),
        kept_on_resume=False,
    )
    resume: bool | Path | None = setting(
        "run",
        "continue an interrupted run from OUTPUT/checkpoints/last.ckpt (or from CKPT): epochs, optimizer, "
        "schedule and logs go on where they stopped",
        general=False,
        const=True,
        metavar="CKPT",
        kept_on_resume=False,
    )
    eval_clips: int | None = setting(
        "run",
        "clips per video in the final video-level evaluation",
        general=10,
        demo=2,
        metavar="N",
        checks=(positive_integer,),
    )
    eval_crops: int | None = setting(
        "run",
        "spatial crops per clip in the final evaluation",
        general=3,
        demo=1,
        metavar="N",
        checks=(positive_integer,),
    )
    # programmatic use only, not stored in checkpoints
    callbacks: list[Any] = field(default_factory=list)  # more Lightning callbacks
    trainer_options: dict[str, Any] = field(default_factory=dict)  # more Trainer keyword arguments

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy (paths as strings) of the settings, stored in checkpoints."""
        values = {s.name: getattr(self, s.name) for s in declared_settings(type(self))}
        return {name: str(value) if isinstance(value, Path) else value for name, value in values.items()}

    def default_for(self, name: str) -> Any:
        """The default of setting ``name`` on this config's data: a real data set, or which demo set."""
        return setting_named(type(self), name).declaration.default(demo_set(self.data, self.demo))

    @classmethod
    def flag(cls, name: str) -> str:
        """The ``cbam3d train`` flag of setting ``name`` (``attention_kwargs``: ``--attention-option``)."""
        return setting_named(cls, name).flag

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add a flag per setting to ``parser``, in argument groups; a flag left out parses to ``None``."""
        groups: dict[str, Any] = {}
        for declared in declared_settings(cls):
            group = declared.declaration.group
            if group not in groups:
                groups[group] = parser.add_argument_group(group)
            groups[group].add_argument(declared.flag, **declared.argument_options())

    @classmethod
    def from_arguments(cls, arguments: argparse.Namespace) -> TrainConfig:
        """The config of arguments parsed by a parser given :meth:`add_arguments` (settings not given: None)."""
        return cls(**{s.name: s.from_flag(getattr(arguments, s.name)) for s in declared_settings(cls)})
