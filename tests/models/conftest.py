"""Fixtures of the network tests."""

from collections.abc import Callable

import pytest
import torch


def _random_tensor(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="session")
def random_tensor() -> Callable[..., torch.Tensor]:
    """``random_tensor(*shape, seed=0)``: standard normal values from a generator of their own (the global one is
    left alone), for the clips, images and volumes the networks take."""
    return _random_tensor
