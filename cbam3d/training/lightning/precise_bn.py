"""Precise BatchNorm statistics (SlowFast / PyTorchVideo's "precise BN"), recomputed before each validation."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

__all__ = ["PreciseBatchNorm", "recompute_batchnorm_statistics"]


def recompute_batchnorm_statistics(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    *,
    average: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> int:
    """Replace the running mean and variance of every BatchNorm in ``model`` by their averages over ``batches``.

    Each BatchNorm (those of the attention gates, such as CBAM's spatial gate and BAM's, included) is reset
    and given momentum None, which makes its running statistics the cumulative average of the per-batch mean
    and unbiased variance; ``model`` runs in train mode without gradients, so its weights are untouched; its
    momenta and train/eval mode are restored afterwards.

    Args:
        model: the network; called on each batch.
        batches: input batches, e.g. (N, C, T, H, W) clips.
        average: applied to each statistic afterwards, e.g. the mean over DDP processes.

    Returns:
        The number of batches used.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    momenta, was_training = [norm.momentum for norm in norms], model.training
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    used = 0
    try:
        model.train()
        with torch.no_grad():
            for batch in batches:
                model(batch)
                used += 1
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)
    if average is not None:
        for norm in norms:
            norm.running_mean.copy_(average(norm.running_mean))
            norm.running_var.copy_(average(norm.running_var))
    return used


class PreciseBatchNorm(Callback):
    """Before each validation, :func:`recompute_batchnorm_statistics` over the first ``batches`` training batches
    (the training clips and their augmentations, without mixing), averaged over DDP processes.

    With :class:`~cbam3d.training.lightning.ema.WeightEMA` listed before it, the statistics are those of the
    averaged weights being validated.
    """

    def __init__(self, batches: int) -> None:
        if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
            raise ValueError(f"batches must be a positive int, got {batches!r}")
        self.batches = batches

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return

        def clips() -> Iterable[torch.Tensor]:
            for batch in islice(trainer.train_dataloader, self.batches):
                if batch["video"].shape[0] > 0:
                    yield batch["video"].to(pl_module.device, non_blocking=True)

        def mean_over_processes(value: torch.Tensor) -> torch.Tensor:
            return trainer.strategy.reduce(value.clone(), reduce_op="mean")

        with trainer.precision_plugin.forward_context():
            recompute_batchnorm_statistics(pl_module, clips(), average=mean_over_processes)
