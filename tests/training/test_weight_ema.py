"""The weight average of --ema (cbam3d.training.lightning.ema.WeightEMA): after k optimizer steps it equals the
closed form; it is swapped in for validation and back; checkpoints hold it as their weights and keep the
training weights and the average for --resume."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

pytest.importorskip("lightning")

from cbam3d.training.lightning.ema import WeightEMA


class Holder(nn.Module):
    """Stands in for the LightningModule: the callback reads ``model`` and ``device``."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
        self.device = torch.device("cpu")


def set_weights(holder: Holder, value: float) -> None:
    with torch.no_grad():
        for tensor in [*holder.model.parameters(), holder.model[1].running_mean, holder.model[1].running_var]:
            tensor.fill_(value)


def trained(decay: float, values: list[float]) -> tuple[WeightEMA, Holder]:
    """The callback after one optimizer step per value (the weights set to it), from weights values[0]."""
    holder, ema, trainer = Holder(), WeightEMA(decay), SimpleNamespace(global_step=0)
    set_weights(holder, values[0])
    ema.setup(trainer, holder, "fit")
    ema.on_fit_start(trainer, holder)
    for step, value in enumerate(values[1:], start=1):
        set_weights(holder, value)
        trainer.global_step = step
        ema.on_train_batch_end(trainer, holder, None, None, step)
        ema.on_train_batch_end(trainer, holder, None, None, step)  # an accumulation step: no optimizer step
    return ema, holder


def test_the_average_after_k_steps_is_the_closed_form():
    decay, values = 0.8, [1.0, -2.0, 0.5, 3.0, 4.0]
    ema, _ = trained(decay, values)
    k = len(values) - 1
    expected = decay**k * values[0] + sum((1 - decay) * decay ** (k - i) * values[i] for i in range(1, k + 1))
    averaged = ema.average.module
    for tensor in [*averaged.parameters(), averaged[1].running_mean, averaged[1].running_var]:
        assert torch.allclose(tensor, torch.full_like(tensor, expected)), tensor


def test_validation_sees_the_average_and_training_gets_its_weights_back():
    ema, holder = trained(0.5, [0.0, 4.0])
    ema.on_validation_epoch_start(None, holder)
    assert torch.allclose(holder.model[0].weight, torch.full_like(holder.model[0].weight, 2.0))
    ema.on_validation_epoch_end(None, holder)
    assert torch.allclose(holder.model[0].weight, torch.full_like(holder.model[0].weight, 4.0))


def test_checkpoints_hold_the_average_and_resume_restores_both():
    ema, holder = trained(0.5, [0.0, 4.0])
    checkpoint = {"state_dict": {f"model.{k}": v.clone() for k, v in holder.model.state_dict().items()}}
    ema.on_save_checkpoint(None, holder, checkpoint)
    assert torch.allclose(checkpoint["state_dict"]["model.0.weight"], torch.full((2, 3), 2.0))
    assert torch.allclose(checkpoint["training_state_dict"]["model.0.weight"], torch.full((2, 3), 4.0))

    resumed_ema, resumed = WeightEMA(0.5), Holder()
    resumed_ema.setup(SimpleNamespace(global_step=0), resumed, "fit")
    resumed.load_state_dict(checkpoint["state_dict"])  # what Lightning loads before the callbacks' hooks
    resumed_ema.on_load_checkpoint(None, resumed, checkpoint)
    assert torch.allclose(resumed.model[0].weight, torch.full((2, 3), 4.0))
    assert torch.allclose(resumed_ema.average.module[0].weight, torch.full((2, 3), 2.0))
    assert resumed_ema.average.n_averaged.item() == ema.average.n_averaged.item()


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_a_decay_outside_the_open_unit_interval_is_refused(decay):
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\)"):
        WeightEMA(decay)
