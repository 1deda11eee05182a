"""``train(config) -> metrics``: the whole training run behind ``cbam3d train``."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cbam3d.data import KINETICS_MEAN, KINETICS_STD, ClipAugmentation, ensure_demo_dataset
from cbam3d.inference.checkpoint import (
    ClipSpec,
    ModelSpec,
    _torch_load,
    build_model,
    load_checkpoint,
    read_checkpoint_info,
)
from cbam3d.inference.datasets import discover_split, eval_resize_for
from cbam3d.inference.devices import inference_autocast_dtype
from cbam3d.inference.evaluate import score_records
from cbam3d.models import count_parameters
from cbam3d.models.complexity import measure
from cbam3d.utils.atomic import atomic_write_json
from cbam3d.utils.errors import UsageError

from ..curves import plot_training_curves
from ..mixing import BatchMixing
from ..pretrained import load_pretrained
from ..run_checks import check_classes, check_resumable, epochs_completed, output_dir, resolve_resume_checkpoint
from ..run_folder import CHECKPOINT_DIR, LAST_CHECKPOINT, METRICS_FILE, RunTerminated, claim_run_folder
from ..settings import TrainConfig, check_precision_fits, resolve_config
from .checkpoint_io import AtomicCheckpointIO
from .checkpoints import BestCheckpoint, LastCheckpoint
from .datamodule import VideoDataModule
from .ema import WeightEMA
from .module import VideoClassifier, weights_description
from .precise_bn import PreciseBatchNorm
from .summary import ComplexitySummary
from .throughput import TrainingThroughput

__all__ = ["build_trainer", "train"]


def _world(config: TrainConfig) -> tuple[int, int]:
    """(devices per node, nodes): the flags, or what ``torchrun`` set up when it launched this process."""
    if torch.distributed.is_available() and torch.distributed.is_torchelastic_launched():
        local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        world = int(os.environ.get("WORLD_SIZE", local))
        devices, nodes = local, max(1, world // local)
        if config.devices not in (None, 1, devices) or config.num_nodes not in (None, 1, nodes):
            raise UsageError(
                f"under torchrun (world size {world}, {local} per node) --devices must be {devices} "
                f"and --num-nodes {nodes}, or left out"
            )
        return devices, nodes
    return config.devices, config.num_nodes


def _accelerator(config: TrainConfig) -> str:
    if config.accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--accelerator {config.accelerator}: no CUDA device is available")
        return "cuda"
    if config.accelerator == "cpu":
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _precision(config: TrainConfig, accelerator: str) -> str:
    if config.precision != "auto":
        return config.precision
    mixed = {torch.bfloat16: "bf16-mixed", torch.float16: "16-mixed", None: "32-true"}
    return mixed[inference_autocast_dtype(torch.device(accelerator))]


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _check_network_runs(model_spec: ModelSpec, config: TrainConfig, *, num_classes: int) -> None:
    """Build the network on the meta device and run one clip through it: option values the network does not
    check itself (``n_input_channels=1``, a width too large to allocate) fail here, in one line, not mid-epoch.

    Raises:
        UsageError: the network cannot be built with these options or does not take the clips.
    """
    try:
        with torch.device("meta"), torch.no_grad():
            network = build_model(model_spec, num_classes).eval()
            network(torch.empty(1, 3, config.frames, config.size, config.size))
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError) as error:
        raise UsageError(
            f"cannot build {config.model} with attention {config.attention}, options "
            f"{config.model_options} and attention options {config.attention_kwargs} for "
            f"{config.frames}x{config.size}x{config.size} clips: {error}"
        ) from error


def build_trainer(config: TrainConfig, output: Path, *, accelerator: str, steps_per_epoch: int) -> L.Trainer:
    """The Lightning Trainer of a run: devices, DDP, precision, checkpoints every epoch (atomic), loggers."""
    devices, num_nodes = _world(config)
    distributed = devices * num_nodes > 1
    # every epoch: the best by clip-level val top-1 (multi-label: val mAP), then last.ckpt, overwritten (what
    # --resume continues from), which names the best (see .checkpoints for why the order matters)
    monitored = "val_map" if config.multi_label else "val_top1"
    best = BestCheckpoint(
        dirpath=output / CHECKPOINT_DIR,
        filename=f"best-epoch{{epoch:03d}}-{monitored.removeprefix('val_')}{{{monitored}:.4f}}",
        auto_insert_metric_name=False,
        monitor=monitored,
        mode="max",
        save_top_k=1,
        every_n_epochs=1,
    )
    last = LastCheckpoint(
        best=best,
        dirpath=output / CHECKPOINT_DIR,
        filename=LAST_CHECKPOINT.removesuffix(".ckpt"),
        monitor=None,
        save_top_k=1,
        every_n_epochs=1,
        enable_version_counter=False,
    )
    options: dict[str, Any] = dict(
        accelerator="gpu" if accelerator == "cuda" else "cpu",
        devices=devices,
        num_nodes=num_nodes,
        # gradient_as_bucket_view: the gradients live in DDP's all-reduce buckets instead of beside them (one
        # copy of the gradients less in memory, and no copy into the buckets at each step)
        strategy=DDPStrategy(find_unused_parameters=False, gradient_as_bucket_view=True) if distributed else "auto",
        sync_batchnorm=bool(config.sync_bn) and distributed,
        use_distributed_sampler=True,
        precision=_precision(config, accelerator),
        benchmark=accelerator == "cuda",
        max_epochs=config.epochs,
        accumulate_grad_batches=config.accumulate,
        callbacks=[
            best,
            last,
            LearningRateMonitor(logging_interval="step"),
            TQDMProgressBar(),
            ComplexitySummary(),
            *config.callbacks,
        ],
        enable_model_summary=False,  # its FLOPs column reads 0: ComplexitySummary gives the real multiply-adds
        logger=[TensorBoardLogger(output, name="tensorboard"), CSVLogger(output, name="csv")],
        plugins=[AtomicCheckpointIO()],
        default_root_dir=output,
        log_every_n_steps=max(1, min(50, steps_per_epoch // 2)),
        num_sanity_val_steps=1,
    )
    options.update(config.trainer_options)
    return L.Trainer(**options)


def _final_evaluation(best: Path, config: TrainConfig, root: Path, accelerator: str) -> dict[str, Any]:
    """Video-level, multi-clip multi-crop top-1/top-5 (multi-label: mAP) of the ``best`` checkpoint on the
    validation split."""
    device = torch.device("cuda" if accelerator == "cuda" else "cpu")
    model, info = load_checkpoint(best, map_location=device)
    split = discover_split(root, "val", fold=config.fold, annotations=config.annotations)
    precision = _precision(config, accelerator)
    autocast = torch.bfloat16 if precision.startswith("bf16") else torch.float16 if precision.startswith("16") else None
    scores, report = score_records(
        model,
        info,
        split.records,
        clips=config.eval_clips,
        crops=config.eval_crops,
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        autocast_dtype=autocast,
        channels_last=device.type == "cuda",
    )
    report["skipped_clips"] = scores.skipped_clips
    scored = set(scores.video_indices.tolist())
    report["unreadable_videos"] = [str(r.path) for i, r in enumerate(split.records) if i not in scored]
    return report


def _mixing(config: TrainConfig, num_classes: int) -> BatchMixing | None:
    """The run's MixUp / CutMix, or None when both are off."""
    if not (config.mixup or config.cutmix):
        return None
    return BatchMixing(num_classes=num_classes, mixup=config.mixup, cutmix=config.cutmix, seed=config.seed)


def _first_names(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def train(config: TrainConfig) -> dict[str, Any]:
    """Train a video classifier, evaluate its best checkpoint and write the run's outputs.

    Writes under ``OUTPUT`` (``config.output``): ``checkpoints/last.ckpt`` and ``checkpoints/best-*.ckpt``
    (every epoch, atomically), ``tensorboard/`` and ``csv/`` logs, ``curves.png`` (loss and top-1 per epoch)
    and ``metrics.json``.

    Returns:
        On the global-zero process, the metrics also written to ``metrics.json``: ``val_top1``, ``val_top5``
        (video level, ``eval_clips`` x ``eval_crops`` views per video, best checkpoint, validation split),
        ``epochs`` (completed in total, across resumes), ``seconds`` (wall time of this call), ``best_checkpoint``,
        ``last_checkpoint``, ``output`` (the folder), ``resumed_from``, ``per_class`` ... On the other DDP processes,
        an empty dict.

    Only one process trains in ``OUTPUT`` at a time (it holds ``OUTPUT/.lock``), and a run that is not resumed
    must start in a folder that holds no run. A resume whose ``--epochs`` are done already trains nothing, says so
    and evaluates.

    Raises:
        UsageError: on bad settings, a data set missing or of one class, nothing to resume, ``OUTPUT`` in use by
            another process or holding a run that this one (not ``--resume``) would replace.
        RunTerminated: the process got SIGTERM while training.
        OSError: a write that failed, ``filename`` the file being written (see
            :func:`cbam3d.utils.atomic.no_space_message` for a full disk).
    """
    start = time.perf_counter()
    output = output_dir(config)
    checked = _check_start(config, output)  # before the folder is claimed (and created): bad settings leave none
    if rank_zero_only.rank != 0:  # a process Lightning launched for DDP: the global-zero one owns the folder
        return _train(checked, output, start)
    with claim_run_folder(output, resuming=checked.resume_from is not None):
        return _train(checked, output, start)


class _Start(NamedTuple):
    """A run's checked settings: the resolved config, what it resumes (checkpoint, its info, epochs done) and
    where it runs."""

    config: TrainConfig
    resume_from: Path | None
    resumed_info: dict[str, Any] | None
    epochs_done: int
    accelerator: str
    devices: int
    num_nodes: int


def _check_start(config: TrainConfig, output: Path) -> _Start:
    """The settings of a run resolved (with those of the run it resumes) and checked; nothing written."""
    resume_from = resolve_resume_checkpoint(config)
    resumed_info = None
    epochs_done = 0
    if resume_from is not None:
        try:
            resumed = _torch_load(resume_from, "cpu")
            resumed_info = read_checkpoint_info(resumed, resume_from)
        except ValueError as error:
            raise UsageError(f"--resume: {error}") from error
        epochs_done = epochs_completed(resumed)
        del resumed
    config = resolve_config(config, resumed=resumed_info.get("config") if resumed_info else None)
    if resumed_info is not None:
        check_resumable(config, resumed_info, resume_from)
    config.output = output
    accelerator = _accelerator(config)
    check_precision_fits(config.precision, accelerator)
    devices, num_nodes = _world(config)
    if config.sync_bn and accelerator == "cpu" and devices * num_nodes > 1:
        raise UsageError("--sync-bn needs GPUs: torch's SyncBatchNorm does not run on the CPU")
    return _Start(config, resume_from, resumed_info, epochs_done, accelerator, devices, num_nodes)


def _train(checked: _Start, output: Path, start: float) -> dict[str, Any]:
    """:func:`train` in its folder (claimed by the global-zero process)."""
    config, resume_from, resumed_info, epochs_done, accelerator, devices, num_nodes = checked

    if accelerator == "cpu":
        torch.set_num_threads(config.threads or max(1, _cpu_count() // devices))
    else:
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    L.seed_everything(config.seed, workers=True, verbose=False)

    if config.data is None:
        root = Path(
            ensure_demo_dataset(
                variant=config.demo, train_per_class=config.demo_videos, progress=rank_zero_only.rank == 0
            )
        )
        rank_zero_info(f"data: the built-in {config.demo} demo set at {root}")
    else:
        root = config.data
    data = VideoDataModule(
        root,
        annotations=config.annotations,
        fold=config.fold,
        frames=config.frames,
        sampling_rate=config.sampling_rate,
        size=config.size,
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        horizontal_flip=config.horizontal_flip,
        train_scale=config.train_scale,
        augmentation=ClipAugmentation(config.augment, config.augment_magnitude, config.random_erase),
        class_balanced=config.class_balanced,
        seed=config.seed,
        multi_label=config.multi_label,
        clips_per_decode=config.clips_per_decode,
        decoder=config.decoder,
    )

    if not config.multi_label:  # one tag of a multi-label set is a yes/no question, a fine task on its own
        check_classes(data.class_names, root)
    if resumed_info is not None and data.class_names != list(resumed_info["class_names"]):
        raise UsageError(
            f"--resume: {resume_from} was trained on {len(resumed_info['class_names'])} classes "
            f"({_first_names(resumed_info['class_names'])}) but the data set has {len(data.class_names)} "
            f"({_first_names(data.class_names)}); resume with the same data, or start a new --output"
        )
    model_spec = ModelSpec(
        config.model,
        None if config.attention == "none" else config.attention,
        dict(config.attention_kwargs),
        dict(config.model_options),
    )
    # An option the network or its attention does not take stops the run here, in one line.
    _check_network_runs(model_spec, config, num_classes=len(data.class_names))
    module = VideoClassifier(
        model_spec,
        ClipSpec(
            config.frames,
            config.sampling_rate,
            config.size,
            tuple(KINETICS_MEAN),
            tuple(KINETICS_STD),
            eval_resize_for(config.size, config.train_scale),
        ),
        data.class_names,
        optimizer=config.optimizer,
        lr=config.lr,
        weight_decay=config.weight_decay,
        warmup_epochs=config.warmup_epochs,
        label_smoothing=config.label_smoothing,
        config=config.to_dict(),
        mixing=_mixing(config, len(data.class_names)),
        multi_label=config.multi_label,
    )
    if config.pretrained is not None and resume_from is None:
        try:
            rank_zero_info(load_pretrained(module.model, config.pretrained, model_name=config.model).summary())
        except ValueError as error:
            raise UsageError(str(error)) from error
    if config.compile:
        module.model.compile()  # in place: parameter names, and so checkpoints, stay those of the plain network

    if resume_from is not None and config.epochs <= epochs_done:
        rank_zero_info(
            f"nothing left to train: {resume_from} has trained {epochs_done} epochs and --epochs is {config.epochs} "
            f"(give --epochs above {epochs_done} to train more); evaluating its best checkpoint"
        )
    per_device_batches = len(data.train_split.records) // (config.batch_size * devices * num_nodes)
    throughput = TrainingThroughput()
    # WeightEMA before PreciseBatchNorm: the statistics are recomputed for the averaged weights it swaps in
    recipe = [WeightEMA(config.ema)] if config.ema else []
    recipe += [PreciseBatchNorm(config.precise_bn)] if config.precise_bn else []
    config.callbacks = [*config.callbacks, *recipe, throughput]
    trainer = build_trainer(config, output, accelerator=accelerator, steps_per_epoch=max(1, per_device_batches))
    for logger in trainer.loggers:
        logger.log_hyperparams(module.hyperparameters())
    with warnings.catch_warnings():
        if resume_from is not None:  # the folder holds the run being resumed, as it should
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        try:
            trainer.fit(module, datamodule=data, ckpt_path=str(resume_from) if resume_from else None)
        except SIGTERMException as stop:  # Lightning's is a SystemExit with status 0: as if the run had finished
            raise RunTerminated(f"{output} was terminated (SIGTERM)") from stop
        except SystemExit as stop:  # Lightning ends a Ctrl-C with sys.exit(1): say how to continue instead
            if isinstance(stop.__context__, KeyboardInterrupt):
                raise KeyboardInterrupt from stop
            raise

    if not trainer.is_global_zero:
        return {}
    best_callback = trainer.checkpoint_callback  # the first ModelCheckpoint: BestCheckpoint
    last = output / CHECKPOINT_DIR / LAST_CHECKPOINT
    best = Path(best_callback.best_model_path) if best_callback.best_model_path else last
    report = _final_evaluation(best, config, root, accelerator)
    if module.history:
        plot_training_curves(module.history, output / "curves.png")
    skipped = module.skipped_clips + report["skipped_clips"]
    if config.multi_label:
        scores = {
            "val_map": report["map"],
            "val_top1": report["top1"],
            "per_class_ap": report["per_class_ap"],
            "classes_without_positives": report["classes_without_positives"],
        }
    else:
        scores = {"val_top1": report["top1"], "val_top5": report["top5"], "per_class": report["per_class"]}
    metrics = {
        **scores,
        "val_videos": report["videos"],
        "eval_views": {"clips": config.eval_clips, "crops": config.eval_crops},
        "epochs": trainer.current_epoch,
        "seconds": time.perf_counter() - start,
        "output": str(output.resolve()),
        "best_checkpoint": str(best.resolve()),
        "last_checkpoint": str(last.resolve()),
        "resumed_from": str(resume_from.resolve()) if resume_from else None,
        "model": config.model,
        "attention": config.attention,
        "skipped_clips": skipped,
        "unreadable_videos": sorted(module.unreadable_videos.union(report["unreadable_videos"], data.left_out)),
        "history": module.history,
        # with --mixup / --cutmix the training top-1 of the history counts the target's largest share as the label
        "train_top1_against": "the label of the largest share of the mixed target" if module.mixing else "the label",
        "weights": weights_description(config.ema, multi_label=config.multi_label),
        # cost: parameters, GMACs of one clip (see cbam3d.models.complexity), and of this call's training epochs
        "parameters": count_parameters(module.model),
        "gmacs": measure(
            lambda: build_model(model_spec, len(data.class_names)), (3, config.frames, config.size, config.size)
        ).gmacs,
        "train_clips_per_second": throughput.clips_per_second(),
        "peak_memory_mb": throughput.peak_memory_mb(module.device),
    }
    atomic_write_json(metrics, output / METRICS_FILE)
    headline = (
        f"mAP {100 * metrics['val_map']:.1f}%, top-1 {100 * metrics['val_top1']:.1f}%"
        if config.multi_label
        else f"top-1 {100 * metrics['val_top1']:.1f}%, top-5 {100 * metrics['val_top5']:.1f}%"
    )
    rank_zero_info(
        f"video-level validation {headline} ({report['videos']} videos, {config.eval_clips} clips x "
        f"{config.eval_crops} crops); metrics in {output / METRICS_FILE}"
    )
    if config.multi_label and report["classes_without_positives"]:
        rank_zero_info(
            f"left out of the mAP (no validation video): {_first_names(report['classes_without_positives'])}"
        )
    return metrics
