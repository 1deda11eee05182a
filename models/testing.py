"""Helpers for equivalence checks between networks (used by the test suite)."""

from __future__ import annotations

import torch
from torch import nn

from cbam3d.layers import BATCH_NORM

_NORMS = tuple(BATCH_NORM.values())


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0, std: float = 0.1) -> nn.Module:
    """Give every BatchNorm and every constant-initialised parameter random values, in place.

    Default initialisations hide mistakes: a BatchNorm with its default statistics is the identity in
    eval mode, a gate whose BN weight is 0 is constant, zero biases hide a swapped bias. After this
    call BatchNorm weights and running variances lie in [0.5, 1.5], BatchNorm biases and running
    means are N(0, std), and every other parameter that held a single repeated value (biases, zeroed
    weights) is N(0, std). Parameters already initialised at random are kept. Returns ``model``.
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform_(t: torch.Tensor) -> None:
        t.copy_(torch.rand(t.shape, generator=generator) + 0.5)

    def normal_(t: torch.Tensor) -> None:
        t.copy_(torch.randn(t.shape, generator=generator) * std)

    norm_params = set()
    for module in model.modules():
        if isinstance(module, _NORMS):
            uniform_(module.weight)
            normal_(module.bias)
            normal_(module.running_mean)
            uniform_(module.running_var)
            norm_params.update((id(module.weight), id(module.bias)))
    for param in model.parameters():
        if id(param) not in norm_params and torch.all(param == param.flatten()[0]):
            normal_(param)
    return model
