"""The LightningModule: a video classifier, its loss, optimiser, schedule and per-epoch metrics."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics.classification import MultilabelAveragePrecision

from cbam3d.inference.checkpoint import ClipSpec, ModelSpec, build_model, make_info
from cbam3d.inference.scoring import mean_average_precision
from cbam3d.utils.errors import UsageError

from ..mixing import BatchMixing
from ..schedule import warmup_cosine

__all__ = ["LossNotFiniteError", "VideoClassifier", "topk_correct", "weights_description"]


class LossNotFiniteError(UsageError):
    """The training loss became inf or nan: the run stops (as a usage error: the settings need changing)."""


def weights_description(ema: float | None, *, multi_label: bool = False) -> str:
    """What a run's checkpoints hold as their weights (the checkpoint info's ``weights``)."""
    if ema:
        monitored = "val mAP" if multi_label else "val top-1"
        return f"exponential moving average of the training weights (--ema {ema}); best chosen on its {monitored}"
    return "training weights"


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """How many of the (N, K) ``logits`` rows have their label among the ``k`` highest scores (0-d tensor).

    ``labels``: (N,) class indices, or (N, K) multi-hot targets (a row counts when one of its ``k`` highest
    scores is one of its labels)."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    if labels.dim() == 2:
        return (labels.gather(1, top) > 0).any(dim=1).sum()
    return (top == labels[:, None]).any(dim=1).sum()


def smoothed_binary_targets(targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Multi-hot targets pulled towards 1/2 by ``smoothing``: 1 -> 1 - s/2, 0 -> s/2 (label smoothing of each
    class's two-way choice, as cross-entropy's smoothing spreads s over the classes)."""
    return targets * (1.0 - smoothing) + 0.5 * smoothing


class VideoClassifier(L.LightningModule):
    """Trains a ``models`` network on (N, C, T, H, W) clips with label-smoothed cross-entropy, or, with
    ``multi_label``, one sigmoid per class and binary cross-entropy on smoothed multi-hot targets (batches then
    carry ``"targets"`` (N, K)); top-1 then counts a clip whose highest score is one of its labels, and each
    validation adds ``val_map``, the mean over classes (those with a positive clip) of the average precision.

    Optimiser: SGD (momentum 0.9, Nesterov) or AdamW; no weight decay on biases and normalisation weights.
    Schedule: linear warmup over ``warmup_epochs`` then cosine decay to zero, stepped at every optimizer step
    (so gradient accumulation and the number of devices are accounted for).

    With ``mixing``, each training batch is mixed (MixUp / CutMix) and the loss is the cross-entropy against the
    mixed, label-smoothed targets; the training top-1 then counts a clip as right when its highest score is the
    target's largest share (the label of the clip that covers most of the mixed clip).

    Each epoch appends to :attr:`history` the epoch's mean training loss and top-1 (over the clips seen, all
    ranks together) and validation loss, top-1 and top-5 (clip level); the history is saved in checkpoints, so
    it survives ``--resume``, and gives the training curves.

    Args:
        model_spec: the network to build.
        clip: the input clips (stored in checkpoints for evaluation and prediction).
        class_names: index -> class name.
        optimizer, lr, weight_decay, warmup_epochs, label_smoothing: the optimisation settings.
        multi_label: sigmoid outputs and binary cross-entropy (see above); stored in checkpoints.
        config: the run's settings, stored in checkpoints.
        mixing: MixUp / CutMix of the training batches, or None.
    """

    def __init__(
        self,
        model_spec: ModelSpec,
        clip: ClipSpec,
        class_names: list[str],
        *,
        optimizer: str = "sgd",
        lr: float = 0.05,
        weight_decay: float = 1e-4,
        warmup_epochs: float = 0.0,
        label_smoothing: float = 0.0,
        config: dict[str, Any] | None = None,
        mixing: BatchMixing | None = None,
        multi_label: bool = False,
    ) -> None:
        super().__init__()
        if optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {optimizer!r}")
        self.model_spec, self.clip, self.class_names = model_spec, clip, list(class_names)
        self.optimizer_name, self.lr, self.weight_decay = optimizer, lr, weight_decay
        self.warmup_epochs = warmup_epochs
        self.config = dict(config or {})
        self.model = build_model(model_spec, num_classes=len(self.class_names))
        self.multi_label, self.label_smoothing = multi_label, label_smoothing
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)  # takes hard or mixed soft targets
        self.mixing = mixing
        # the epoch's clip scores, gathered from every DDP process at compute()
        self.val_average_precision = (
            MultilabelAveragePrecision(num_labels=len(self.class_names), average=None) if multi_label else None
        )
        self.history: list[dict[str, float]] = []
        self.channels_last = False
        # [loss sum, top-1 correct, clips] for training; [loss sum, top-1, top-5, clips] for validation
        self.register_buffer("_train_sums", torch.zeros(3, dtype=torch.float64), persistent=False)
        self.register_buffer("_val_sums", torch.zeros(4, dtype=torch.float64), persistent=False)
        self.register_buffer("_val_positives", torch.zeros(len(self.class_names)), persistent=False)
        self.skipped_clips = 0
        self.unreadable_videos: set[str] = set()  # training videos whose clips were replaced by others

    # -- forward and the GPU memory format -------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.trainer is not None and self.trainer.strategy.root_device.type == "cuda":
            self.channels_last = True  # cuDNN's fastest 3D convolutions (with bf16) take NDHWC tensors
            self.model.to(memory_format=torch.channels_last_3d)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) clips -> (N, num_classes) logits."""
        if self.channels_last:
            video = video.contiguous(memory_format=torch.channels_last_3d)
        return self.model(video)

    # -- training --------------------------------------------------------------------------------------------
    def on_train_start(self) -> None:
        # After --resume with a larger --epochs the schedule is longer than the one the checkpoint's learning
        # rates came from: put every group on the current schedule at the step reached (a no-op otherwise).
        for scheduler_config in self.trainer.lr_scheduler_configs:
            scheduler = scheduler_config.scheduler
            for group, base, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
                group["lr"] = base * factor(scheduler.last_epoch)

    def on_train_epoch_start(self) -> None:
        self._train_sums.zero_()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        self.skipped_clips += int(batch.get("skipped", 0))
        self.unreadable_videos.update(batch.get("unreadable", ()))
        video, labels = batch["video"], batch["label"]
        if video.shape[0] == 0:  # every clip of the batch was unreadable
            if self.trainer.world_size == 1:
                return None
            # Under DDP the other processes wait for this one in the gradient all-reduce: join it with a zero
            # loss that reaches every parameter (zero gradients) instead of skipping the step.
            return torch.stack([parameter.sum() for parameter in self.parameters()]).sum() * 0.0
        targets = labels
        if self.mixing is not None:
            video, targets = self.mixing(video, labels, key=(self.current_epoch, batch_idx, self.global_rank))
            labels = targets.argmax(dim=1)  # the label with the largest share: what the training top-1 counts
        logits = self(video)
        if self.multi_label:
            labels = batch["targets"]
            loss = F.binary_cross_entropy_with_logits(
                logits.float(), smoothed_binary_targets(labels.float(), self.label_smoothing)
            )
        else:
            loss = self.criterion(logits.float(), targets)
        # every rank takes the same decision, so that no process is left waiting in an all-reduce
        if not self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss)), all=True):
            raise LossNotFiniteError(
                f"training stopped: the loss is {loss.item()} (not finite) at step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}); lower --lr, or check the data"
            )
        with torch.no_grad():
            count = labels.shape[0]
            self._train_sums += torch.stack(
                [
                    loss.detach().double() * count,
                    topk_correct(logits, labels, 1).double(),
                    torch.tensor(count, dtype=torch.float64, device=self.device),
                ]
            )
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=count)
        return loss

    # -- validation (clip level; the video-level multi-clip evaluation runs after training) -----------------
    def on_validation_epoch_start(self) -> None:
        self._val_sums.zero_()
        self._val_positives.zero_()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        video, labels = batch["video"], batch["label"]
        if video.shape[0] == 0:
            return
        logits = self(video).float()
        if self.multi_label:
            labels = batch["targets"]
            loss = F.binary_cross_entropy_with_logits(logits, labels.float())
            self.val_average_precision.update(logits.sigmoid(), labels.long())
            self._val_positives += labels.float().sum(dim=0)
        else:
            loss = F.cross_entropy(logits, labels)
        count = labels.shape[0]
        self._val_sums += torch.stack(
            [
                loss.double() * count,
                topk_correct(logits, labels, 1).double(),
                topk_correct(logits, labels, 5).double(),
                torch.tensor(count, dtype=torch.float64, device=self.device),
            ]
        )

    def on_validation_epoch_end(self) -> None:
        val = self.trainer.strategy.reduce(self._val_sums.clone(), reduce_op="sum")
        val_count = max(val[3].item(), 1.0)
        metrics = {
            "val_loss": val[0].item() / val_count,
            "val_top1": val[1].item() / val_count,
            "val_top5": val[2].item() / val_count,
        }
        if self.multi_label:
            metrics["val_map"] = self._val_map()
        if not self.trainer.sanity_checking:
            train = self.trainer.strategy.reduce(self._train_sums.clone(), reduce_op="sum")
            train_count = train[2].item()
            metrics["train_loss_epoch"] = train[0].item() / train_count if train_count else math.nan
            metrics["train_top1"] = train[1].item() / train_count if train_count else math.nan
            self.history.append(
                {
                    "epoch": self.current_epoch,
                    "train_loss": metrics["train_loss_epoch"],
                    "train_top1": metrics["train_top1"],
                    "val_loss": metrics["val_loss"],
                    "val_top1": metrics["val_top1"],
                    "val_top5": metrics["val_top5"],
                    **({"val_map": metrics["val_map"]} if self.multi_label else {}),
                }
            )
        # the values are already summed over every rank: sync_dist only averages equal numbers (and keeps
        # Lightning from warning about unsynchronised epoch-level logging under DDP)
        top1 = metrics.pop("val_top1")
        self.log_dict(metrics, sync_dist=True)
        self.log("val_top1", top1, prog_bar=True, sync_dist=True)

    def _val_map(self) -> float:
        """The epoch's clip-level mean average precision over the classes with a positive clip (then reset)."""
        metric = self.val_average_precision
        positives = self.trainer.strategy.reduce(self._val_positives.clone(), reduce_op="sum")
        if not metric.update_called:  # nothing validated (every clip unreadable)
            return math.nan
        with warnings.catch_warnings():  # classes without a positive clip are left out of the mean below
            warnings.filterwarnings("ignore", message=".*positive samples.*")
            per_class = metric.compute()
        metric.reset()
        return mean_average_precision(per_class.tolist(), (positives > 0).tolist())

    # -- optimisation ----------------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        decay, no_decay = [], []
        for parameter in self.model.parameters():
            if parameter.requires_grad:
                (no_decay if parameter.dim() <= 1 else decay).append(parameter)
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if self.optimizer_name == "sgd":
            optimizer = torch.optim.SGD(groups, lr=self.lr, momentum=0.9, nesterov=True)
        else:
            optimizer = torch.optim.AdamW(groups, lr=self.lr)
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        steps_per_epoch = total_steps / max(1, self.trainer.max_epochs)
        warmup_steps = min(total_steps - 1, round(self.warmup_epochs * steps_per_epoch))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup_steps=warmup_steps, total_steps=total_steps)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    # -- checkpoints -----------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The checkpoint info (see :mod:`cbam3d.inference.checkpoint`)."""
        info = make_info(
            self.class_names, self.model_spec, self.clip, self.config, self.history, multi_label=self.multi_label
        )
        info["weights"] = weights_description(self.config.get("ema"), multi_label=self.multi_label)
        return info

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["cbam3d"] = self.info()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = [dict(entry) for entry in checkpoint.get("cbam3d", {}).get("history", [])]

    def hyperparameters(self) -> dict[str, Any]:
        """Model, clip and optimisation settings, for the loggers."""
        return {
            "model": asdict(self.model_spec),
            "clip": asdict(self.clip),
            "optimizer": self.optimizer_name,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "warmup_epochs": self.warmup_epochs,
            "num_classes": len(self.class_names),
        }
