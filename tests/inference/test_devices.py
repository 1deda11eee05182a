"""Inference on each device: the network set up for fixed-size clips (channels_last_3d and cuDNN autotuning on
CUDA, nothing changed on the CPU), and a checkpoint's scorer on CUDA giving the CPU's probabilities."""

from __future__ import annotations

import pytest
import torch

from cbam3d.inference.checkpoint import load_checkpoint
from cbam3d.inference.devices import prepare_for_clips
from cbam3d.inference.predict import load_scorer


def test_prepare_for_clips_uses_channels_last_3d_and_cudnn_autotuning_on_cuda_only(tiny_checkpoint, device):
    model, _ = load_checkpoint(tiny_checkpoint, map_location=device)
    autotuning = torch.backends.cudnn.benchmark
    try:
        channels_last = prepare_for_clips(model, device)
        on_cuda = device.type == "cuda"
        assert channels_last == on_cuda
        assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last_3d) == on_cuda
        assert torch.backends.cudnn.benchmark == (on_cuda or autotuning)
    finally:
        torch.backends.cudnn.benchmark = autotuning


@pytest.mark.gpu
def test_a_checkpoints_scorer_on_cuda_gives_the_cpus_probabilities(tiny_checkpoint, cuda_device):
    """Under the scorer's bf16 autocast (fp16 on older GPUs) on channels_last_3d clips: within 2e-2."""
    clips = torch.randn(3, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    on_cpu, _ = load_scorer(tiny_checkpoint, device="cpu")
    on_cuda, _ = load_scorer(tiny_checkpoint, device="cuda")
    probabilities = on_cuda(clips)
    assert probabilities.device.type == "cuda" and probabilities.dtype == torch.float32
    torch.testing.assert_close(probabilities.cpu(), on_cpu(clips), atol=2e-2, rtol=0)
