"""The GPU path (needs CUDA; left out of the default run: ``pytest -m gpu``)."""

from __future__ import annotations

import pytest
import torch

L = pytest.importorskip("lightning")
pytest.importorskip("av")

from cbam3d.training import train  # noqa: E402


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_gpu_run_trains_in_bf16_with_channels_last_3d_and_cudnn_benchmark(
    tmp_path, make_tiny_dataset, tiny_run, config_from_flags
):
    seen = {}

    class Probe(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            seen["precision"] = trainer.precision
            seen["device"] = module.device.type
            seen["channels_last"] = module.model.conv1.weight.is_contiguous(memory_format=torch.channels_last_3d)
            seen["cudnn_benchmark"] = torch.backends.cudnn.benchmark

    data = make_tiny_dataset(tmp_path / "data")
    config = config_from_flags("--data", str(data), "--output", str(tmp_path / "run"), "--epochs", "1", *tiny_run)
    config.callbacks = [Probe()]
    metrics = train(config)
    expected = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    assert seen == {"precision": expected, "device": "cuda", "channels_last": True, "cudnn_benchmark": True}
    assert metrics["epochs"] == 1 and 0.0 <= metrics["val_top1"] <= 1.0
