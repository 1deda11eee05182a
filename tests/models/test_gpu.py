"""r3d_18 with CBAM on CUDA as training runs it (channels_last_3d): torch.compile (inductor) forward and backward
give the eager network's numbers, in float32 and under bf16 autocast."""

from __future__ import annotations

import copy

import pytest
import torch

from cbam3d.models import create_model

pytestmark = pytest.mark.gpu

# Relative to the eager result's norm. float32 with TF32 off: inductor's fused kernels sum in other orders, 1e-4 over
# a network 18 layers deep. bf16: both runs round every layer's output to bf16 but at different places (fusions
# skip intermediate roundings), so they differ by a few units of bf16 roundoff (2^-8) grown through the depth: 5e-2.
TOLERANCES = {None: 1e-4, torch.bfloat16: 5e-2}


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.float() - expected.float()).norm() / expected.float().norm()).item()


@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=["fp32", "bf16"])
def test_compiled_r3d_18_with_cbam_matches_eager_forward_and_backward(dtype, cuda_device):
    torch.manual_seed(0)
    eager = create_model("r3d_18", num_classes=5, attention="cbam").to(
        cuda_device, memory_format=torch.channels_last_3d
    )
    eager.train()
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model)
    clips = torch.randn(2, 3, 8, 56, 56, device=cuda_device).contiguous(memory_format=torch.channels_last_3d)
    outputs = []
    for model in (eager, compiled):
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(clips)
        logits.float().logsumexp(dim=1).sum().backward()
        outputs.append(logits)
    tolerance = TOLERANCES[dtype]
    assert _relative_error(outputs[1], outputs[0]) <= tolerance
    gradients = [torch.cat([p.grad.flatten() for p in model.parameters()]) for model in (eager, compiled_model)]
    assert _relative_error(gradients[1], gradients[0]) <= tolerance
