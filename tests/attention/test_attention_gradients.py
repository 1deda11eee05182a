"""Gradients of every module in every dims agree with finite differences (float64 gradcheck)."""

import pytest
import torch

from cbam3d import BAM, CBAM, SE

SHAPES = {1: (2, 8, 5), 2: (2, 8, 4, 3), 3: (2, 8, 3, 3, 2)}
MODULES = {
    "se": lambda dims: SE(8, dims=dims, reduction=4),
    "cbam": lambda dims: CBAM(8, dims=dims, reduction=4, kernel_size=3),
    "cbam-all-pools": lambda dims: CBAM(
        8, dims=dims, reduction=4, kernel_size=3, pool_types=("avg", "max", "lp", "lse")
    ),
    "cbam-parallel": lambda dims: CBAM(8, dims=dims, reduction=4, kernel_size=3, gate_order="parallel"),
    "bam-sum": lambda dims: BAM(8, dims=dims, reduction=4, dilation=1),
    "bam-product": lambda dims: BAM(8, dims=dims, reduction=4, dilation=1, combine="product"),
}


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_gradcheck_float64(name, dims, train):
    torch.manual_seed(0)
    module = MODULES[name](dims).double().train(train)
    # Distinct values: max pooling has no ties, so the function is differentiable where it is checked.
    x = (torch.randperm(torch.Size(SHAPES[dims]).numel(), dtype=torch.float64) / 10 - 2).reshape(SHAPES[dims])
    x.requires_grad_(True)
    if train:
        # Train-mode BatchNorm updates running statistics on every call; check the function, not the update.
        for bn in module.modules():
            if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
                bn.track_running_stats = False
                bn.running_mean = bn.running_var = None
    assert torch.autograd.gradcheck(module, (x,), eps=1e-6, atol=1e-5)


def test_gradcheck_factorized_spatio_temporal_gate():
    torch.manual_seed(0)
    module = CBAM(8, dims=3, reduction=4, kernel_size=3, spatial_mode="factorized").double().eval()
    x = torch.randn(2, 8, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,), eps=1e-6, atol=1e-5)
