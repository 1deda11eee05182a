"""The command line of ``cbam3d train``."""

from __future__ import annotations

import argparse
import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cbam3d.data import DEMO_VARIANTS
from cbam3d.utils.console import closing_summary, quiet_dependencies
from cbam3d.utils.errors import UsageError

from .config import (
    ACCELERATORS,
    DEMO_DEFAULTS,
    GENERAL_DEFAULTS,
    HARD_DEMO_DEFAULTS,
    OPTIMIZERS,
    PRECISIONS,
    TrainConfig,
    attention_choices,
)

__all__ = [
    "config_from_args",
    "literal_or_text",
    "train_main",
    "train_parser",
]


def literal_or_text(text: str) -> Any:
    """``text`` read as a Python literal when it is one (``3``, ``0.5``, ``True``, ``(3, 7, 7)``), else as is."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read by :func:`literal_or_text`."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a Python name, got {text!r}")
    return key, literal_or_text(value)


def _default(name: str) -> str:
    """Help text for a default that differs on the demo set."""
    general, demo = GENERAL_DEFAULTS[name], DEMO_DEFAULTS.get(name, GENERAL_DEFAULTS[name])
    if isinstance(general, dict):
        general = " ".join(f"{k}={v}" for k, v in general.items()) or "none"
        demo = " ".join(f"{k}={v}" for k, v in demo.items()) or "none"
    elif isinstance(general, tuple):
        general, demo = (" ".join(f"{v:.3g}" for v in values) for values in (general, demo))
    return f"default: {general}" if general == demo else f"default: {general}; {demo} on the demo set"


def train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cbam3d train",
        description="Train a video classifier with attention (CBAM, BAM, SE) on real video files or, with no "
        "--data, on the built-in demo set (generated on first use, no download; demo defaults "
        "give a small network that trains on a CPU in a few minutes). Writes checkpoints (every "
        "epoch, atomically), TensorBoard and CSV logs, curves.png and metrics.json under --output.",
        epilog="Several GPUs: --devices N (Lightning launches the processes), or torchrun --nproc_per_node N "
        "cbam3d train ... (devices and nodes are then read from torchrun). Several nodes: add "
        "--num-nodes M (or torchrun --nnodes M). Every setting left out of a --resume is taken from the "
        "run being resumed.",
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="data set folder: a folder per class (UCF101 / HMDB51, with their split lists when "
        "present) or videos listed by --annotations (Kinetics); default: the built-in demo set",
    )
    data.add_argument(
        "--demo-videos",
        type=int,
        metavar="N",
        help="without --data: training videos per class of the generated demo set (8 classes; "
        f"its test list has the generator's default size); {_default('demo_videos')}",
    )
    data.add_argument(
        "--demo",
        choices=DEMO_VARIANTS,
        help="without --data: which generated demo set; hard: distractors that perform class motions "
        "themselves, so the target must be found (its own defaults: "
        + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in HARD_DEMO_DEFAULTS.items())
        + "); default: standard",
    )
    data.add_argument(
        "--annotations",
        type=Path,
        metavar="CSV",
        help="Kinetics-style annotation CSV (path,label or youtube_id,time_start,time_end,label)",
    )
    data.add_argument("--fold", type=int, metavar="N", help="official split number of UCF101 / HMDB51; default: 1")
    data.add_argument("--frames", type=int, metavar="T", help=f"frames per clip; {_default('frames')}")
    data.add_argument(
        "--sampling-rate",
        type=int,
        metavar="S",
        help=f"take every S-th frame of the video; {_default('sampling_rate')}",
    )
    data.add_argument("--size", type=int, metavar="PX", help=f"clip height and width; {_default('size')}")
    data.add_argument(
        "--train-scale",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="training clips: short side resized to a random length in [LOW, HIGH] x --size, then "
        "a random crop; evaluation: resized to LOW x --size, then centre crops; "
        f"{_default('train_scale')}",
    )
    data.add_argument(
        "--flip",
        choices=("auto", "on", "off"),
        default="auto",
        help="random horizontal flip of training clips; auto: on unless the data set says flips "
        "change labels (off on the demo set, which has left and right motions); default: auto",
    )
    data.add_argument(
        "--num-workers",
        type=int,
        metavar="N",
        help="data-loading processes per device; default: the CPU cores, at most 8 "
        f"({GENERAL_DEFAULTS['num_workers']} here); {DEMO_DEFAULTS['num_workers']} on the demo set",
    )

    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        metavar="NAME",
        help="network: resnet3d-10/18/34/50/101/152/200, r2plus1d-10..200, r3d_18, mc3_18, "
        f"r2plus1d_18; {_default('model')}",
    )
    model.add_argument(
        "--attention", choices=attention_choices(), help=f"attention module in the network; {_default('attention')}"
    )
    model.add_argument(
        "--attention-option",
        type=_key_value,
        action="append",
        metavar="KEY=VALUE",
        help="keyword argument of the attention module, e.g. reduction=8 or kernel_size=(3,7,7); repeatable",
    )
    model.add_argument(
        "--model-option",
        type=_key_value,
        action="append",
        metavar="KEY=VALUE",
        help="keyword argument of the network, e.g. widen_factor=0.5 or no_max_pool=True; "
        f"repeatable; {_default('model_options')}",
    )
    model.add_argument(
        "--pretrained",
        type=Path,
        metavar="PATH",
        help="starting weights: torchvision video-ResNet weights, a 2D (to inflate) or inflated "
        "checkpoint, or one of ours; the classifier is re-initialised when class counts differ",
    )

    optimisation = parser.add_argument_group("optimisation")
    optimisation.add_argument(
        "--epochs",
        type=int,
        metavar="N",
        help=f"total number of epochs (a resumed run counts those done); {_default('epochs')}",
    )
    optimisation.add_argument(
        "--batch-size", type=int, metavar="N", help=f"clips per batch and per device; {_default('batch_size')}"
    )
    optimisation.add_argument(
        "--optimizer", choices=OPTIMIZERS, help=f"SGD (momentum 0.9, Nesterov) or AdamW; {_default('optimizer')}"
    )
    optimisation.add_argument(
        "--lr", type=float, help="peak learning rate; default: 0.05 with sgd, 0.001 with adamw; 0.003 on the demo set"
    )
    optimisation.add_argument(
        "--weight-decay",
        type=float,
        metavar="WD",
        help="weight decay (not applied to biases and norms); default: 1e-4 with sgd, 0.05 with adamw",
    )
    optimisation.add_argument(
        "--warmup-epochs",
        type=float,
        metavar="E",
        help=f"linear warmup before the cosine decay; {_default('warmup_epochs')}",
    )
    optimisation.add_argument(
        "--label-smoothing",
        type=float,
        metavar="EPS",
        help=f"label smoothing of the training cross-entropy; {_default('label_smoothing')}",
    )
    optimisation.add_argument(
        "--accumulate",
        type=int,
        metavar="N",
        help=f"accumulate gradients over N batches per optimizer step; {_default('accumulate')}",
    )
    optimisation.add_argument("--seed", type=int, help=f"seed of every random choice; {_default('seed')}")

    hardware = parser.add_argument_group("hardware")
    hardware.add_argument(
        "--accelerator", choices=ACCELERATORS, help="auto: a GPU when there is one, else the CPU; default: auto"
    )
    hardware.add_argument(
        "--devices",
        type=int,
        metavar="N",
        help="GPUs (or CPU processes) per node; N > 1 trains with DDP; default: 1, or torchrun's",
    )
    hardware.add_argument("--num-nodes", type=int, metavar="N", help="nodes for multi-node DDP; default: 1")
    hardware.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto: bf16-mixed on a GPU (16-mixed on GPUs without bf16), 32-true on the CPU; default: auto",
    )
    hardware.add_argument(
        "--sync-bn",
        action="store_true",
        default=None,
        help="synchronise BatchNorm statistics across DDP processes (small per-GPU batches)",
    )
    hardware.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the network (the first steps take longer while it compiles)",
    )
    hardware.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads of each training process; default: the available cores / devices",
    )

    run = parser.add_argument_group("run")
    run.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help=f"folder for checkpoints, logs, curves.png and metrics.json; {_default('output')}",
    )
    run.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CKPT",
        help="continue an interrupted run from OUTPUT/checkpoints/last.ckpt (or from CKPT): epochs, "
        "optimizer, schedule and logs go on where they stopped",
    )
    run.add_argument(
        "--eval-clips",
        type=int,
        metavar="N",
        help=f"clips per video in the final video-level evaluation; {_default('eval_clips')}",
    )
    run.add_argument(
        "--eval-crops",
        type=int,
        metavar="N",
        help=f"spatial crops per clip in the final evaluation; {_default('eval_crops')}",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed ``cbam3d train`` arguments (settings not given stay None)."""
    return TrainConfig(
        data=args.data,
        demo_videos=args.demo_videos,
        demo=args.demo,
        annotations=args.annotations,
        fold=args.fold,
        output=args.output,
        model=args.model,
        attention=args.attention,
        attention_kwargs=dict(args.attention_option) if args.attention_option else None,
        model_options=dict(args.model_option) if args.model_option else None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing,
        accumulate=args.accumulate,
        frames=args.frames,
        sampling_rate=args.sampling_rate,
        size=args.size,
        train_scale=tuple(args.train_scale) if args.train_scale else None,
        eval_clips=args.eval_clips,
        eval_crops=args.eval_crops,
        horizontal_flip={"auto": None, "on": True, "off": False}[args.flip],
        devices=args.devices,
        num_nodes=args.num_nodes,
        accelerator=args.accelerator,
        precision=args.precision,
        sync_bn=args.sync_bn,
        compile=args.compile,
        num_workers=args.num_workers,
        seed=args.seed,
        resume=Path(args.resume) if isinstance(args.resume, str) else args.resume,
        pretrained=args.pretrained,
        threads=args.threads,
    )


def train_main(argv: Sequence[str] | None = None) -> int:
    """``cbam3d train``: returns the exit status (2 with a one-line message on bad input)."""
    parser = train_parser()
    args = parser.parse_args(argv)
    # Deferred: Lightning takes seconds to import, and --help or a usage error should not wait for it.
    from .lightning import train

    try:
        with quiet_dependencies():
            metrics = train(config_from_args(args))
    except UsageError as error:
        parser.error(str(error))
    if metrics:  # the global-zero process
        print(closing_summary(metrics))
    return 0
