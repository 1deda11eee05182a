"""An exponential moving average of the network's weights, validated and checkpointed in their place."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from cbam3d.inference.checkpoint import MODEL_PREFIX, unwrap_model_keys

__all__ = ["WeightEMA"]

_TRAINING_WEIGHTS = "training_state_dict"  # checkpoint key of the network's own weights, for --resume
_AVERAGE_STATE = "ema_state"  # checkpoint key of the average's step count


class WeightEMA(Callback):
    """After every optimizer step, ``average = decay * average + (1 - decay) * weights`` (BatchNorm statistics
    included), starting from the weights at the start of training; so after k steps
    ``average_k = decay**k * w_0 + sum_i (1 - decay) * decay**(k - i) * w_i``.

    Validation runs on the average (it is swapped into the network for the validation epoch), so the best
    checkpoint is chosen on the average's accuracy; checkpoints hold the average as their ``state_dict`` (what
    ``cbam3d evaluate``, ``predict``, ``export`` and ``visualize`` load) and the training weights under
    ``training_state_dict``, from which ``--resume`` continues.

    Lightning's ``EMAWeightAveraging`` averages and swaps every buffer of the LightningModule, our per-epoch
    metric sums included, which would swap the validation sums away mid-epoch; this one averages the network
    (``pl_module.model``) only, on ``torch.optim.swa_utils.AveragedModel``.

    Args:
        decay: the weight of the old average, in (0, 1).
    """

    def __init__(self, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.average: AveragedModel | None = None
        self._last_step = -1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and self.average is None:
            network = pl_module.model
            self.average = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True)
            self.average.update_parameters(network)  # the first update copies: the average starts at w_0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.average.to(pl_module.device)  # created before Lightning moved the network to its device

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step > self._last_step:  # an optimizer step was taken (not a step of accumulation)
            self.average.update_parameters(pl_module.model)
            self._last_step = trainer.global_step

    def _swap(self, pl_module: L.LightningModule) -> None:
        network, average = pl_module.model, self.average.module
        with torch.no_grad():
            for mine, theirs in zip(
                [*average.parameters(), *average.buffers()], [*network.parameters(), *network.buffers()], strict=True
            ):
                held = mine.detach().clone()
                mine.copy_(theirs.detach())
                theirs.copy_(held)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.average is not None:
            self._swap(pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.average is not None:
            self._swap(pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self._last_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._last_step = state_dict["last_step"]

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["state_dict"]
        checkpoint[_TRAINING_WEIGHTS] = state
        averaged = {f"{MODEL_PREFIX}{name}": value for name, value in self.average.module.state_dict().items()}
        checkpoint["state_dict"] = {**state, **averaged}
        checkpoint[_AVERAGE_STATE] = {"n_averaged": self.average.n_averaged.clone(), "decay": self.decay}

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if _TRAINING_WEIGHTS not in checkpoint:  # a run started without --ema: the average starts here
            return
        self.average.module.load_state_dict(unwrap_model_keys(checkpoint["state_dict"]))
        self.average.n_averaged.copy_(checkpoint[_AVERAGE_STATE]["n_averaged"])
        pl_module.load_state_dict(checkpoint[_TRAINING_WEIGHTS])
