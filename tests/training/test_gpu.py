"""The GPU path of training (needs CUDA; left out of the default run: ``pytest -m gpu``): bf16 autocast,
channels_last_3d, cuDNN autotuning and TF32 matrix products, ``--compile``, and DDP with NCCL."""

from __future__ import annotations

import pytest
import torch

L = pytest.importorskip("lightning")
pytest.importorskip("av")

from lightning.pytorch.strategies import DDPStrategy  # noqa: E402

from cbam3d.training import train  # noqa: E402

pytestmark = pytest.mark.gpu


class Probe(L.Callback):
    """Records, at a training step, what the GPU path set up."""

    def __init__(self) -> None:
        self.seen: dict = {}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.seen.update(
            precision=trainer.precision,
            device=module.device.type,
            channels_last=module.model.conv1.weight.is_contiguous(memory_format=torch.channels_last_3d),
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            matmul_precision=torch.get_float32_matmul_precision(),
            backend=torch.distributed.get_backend() if distributed else None,
            world_size=trainer.world_size,
            compiled=hasattr(module.model, "_compiled_call_impl") and module.model._compiled_call_impl is not None,
        )


def _train(tmp_path, make_tiny_dataset, tiny_run, config_from_flags, *flags, strategy=None):
    data = make_tiny_dataset(tmp_path / "data")
    output = tmp_path / "run"
    config = config_from_flags("--data", str(data), "--output", str(output), "--epochs", "1", *tiny_run, *flags)
    probe = Probe()
    config.callbacks = [probe]
    if strategy is not None:
        config.trainer_options = {"strategy": strategy}
    try:
        metrics = train(config)
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    assert metrics["epochs"] == 1 and 0.0 <= metrics["val_top1"] <= 1.0
    return probe.seen, output


def test_a_gpu_run_trains_in_bf16_with_channels_last_3d_and_cudnn_benchmark(
    tmp_path, make_tiny_dataset, tiny_run, config_from_flags
):
    seen, _ = _train(tmp_path, make_tiny_dataset, tiny_run, config_from_flags)
    expected = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    assert seen["precision"] == expected and seen["device"] == "cuda"
    assert seen["channels_last"] and seen["cudnn_benchmark"] and seen["matmul_precision"] == "high"


def test_one_epoch_with_compile_in_bf16_trains_and_saves_the_plain_networks_names(
    tmp_path, make_tiny_dataset, tiny_run, config_from_flags
):
    """``cbam3d train --compile --precision bf16-mixed``: one epoch on CUDA, in channels_last_3d; the checkpoint's
    names are the uncompiled network's (no ``_orig_mod``)."""
    seen, output = _train(
        tmp_path, make_tiny_dataset, tiny_run, config_from_flags, "--compile", "--precision", "bf16-mixed"
    )
    assert seen["precision"] == "bf16-mixed" and seen["compiled"] and seen["channels_last"]
    state = torch.load(output / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")["state_dict"]
    assert state and not any("_orig_mod" in key for key in state)


def test_ddp_with_nccl_in_one_process_trains_an_epoch(tmp_path, make_tiny_dataset, tiny_run, config_from_flags):
    """Lightning's DDP with NCCL at world size 1 in this process (its own TCP store on 127.0.0.1): the module's
    all-reduces (skip decisions, epoch sums in float64) run through NCCL."""
    strategy = DDPStrategy(process_group_backend="nccl", find_unused_parameters=False)
    seen, _ = _train(tmp_path, make_tiny_dataset, tiny_run, config_from_flags, strategy=strategy)
    assert seen["backend"] == "nccl" and seen["world_size"] == 1 and seen["device"] == "cuda"
