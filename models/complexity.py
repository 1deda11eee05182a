"""Parameter and FLOP counts of the networks (the README's model table is written by ``scripts/model_table.py``).

GFLOPs here are **multiply-accumulates** (one multiply-add = 1 FLOP), the convention of torchvision's
published figures (``_ops`` in its weight metadata: ResNet-50 4.09, r3d_18 40.70 at 16 x 112 x 112) and
of the CBAM/BAM papers. ``torch.utils.flop_counter.FlopCounterMode`` counts a multiply-add as 2 FLOPs,
so its total is halved. It counts matrix products and convolutions only (elementwise work such as
BatchNorm, ReLU, pooling and the attention gates' multiplications is left out, as in the published
figures). Models are built and run on the ``meta`` device (tensors with shapes but no data), so
counting allocates no memory and runs no kernels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cbam3d.attention.registry import attention_names

from .registry import create_model

CLIP_SHAPE = (3, 16, 112, 112)


@dataclass(frozen=True)
class Complexity:
    """Size and cost of one model: parameters and GMACs for one input."""

    parameters: int
    gmacs: float


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm running statistics are not counted)."""
    return sum(p.numel() for p in model.parameters())


def count_gmacs(model: nn.Module, input_shape: Sequence[int]) -> float:
    """Multiply-accumulates (in G) of one eval-mode forward pass on an input of ``input_shape`` (batch included).

    Runs the model once; build it on the ``meta`` device (as :func:`measure` does) to avoid the compute.
    """
    device = next(model.parameters()).device
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(tuple(input_shape), device=device))
    return counter.get_total_flops() / 2 / 1e9


def measure(build: Callable[[], nn.Module], clip_shape: Sequence[int] = CLIP_SHAPE) -> Complexity:
    """Build a model on the ``meta`` device and count its parameters and GMACs for one clip (batch 1)."""
    with torch.device("meta"):
        model = build()
    return Complexity(count_parameters(model), count_gmacs(model, (1, *clip_shape)))


def measure_models(
    names: Iterable[str], attentions: Iterable[str | None] | None = None, clip_shape: Sequence[int] = CLIP_SHAPE
) -> dict[tuple[str, str | None], Complexity]:
    """:func:`measure` for every model name x attention (built with :func:`create_model`); ``attentions``
    defaults to None (no attention) and every registered attention."""
    attentions = (None, *attention_names()) if attentions is None else tuple(attentions)
    return {
        (name, attention): measure(functools.partial(create_model, name, attention=attention), clip_shape)
        for name in names
        for attention in attentions
    }
