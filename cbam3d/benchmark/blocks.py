"""The block cases: each registered attention module against its hand-written reference, in 1D, 2D and 3D."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cbam3d.attention.registry import create_attention

from .measure import Result, Timing, Variant, add_ratios, measure_case
from .reference import has_reference, naive_like

__all__ = ["attention_kwargs", "block_results", "block_shape"]


def attention_kwargs(name: str | None, kernel_size: int) -> dict[str, int]:
    """The options every case gives the attention ``name``: CBAM's spatial kernel (the ``--kernel-size``)."""
    return {"kernel_size": kernel_size} if name == "cbam" else {}


def block_shape(shape_3d: Sequence[int], dims: int) -> tuple[int, ...]:
    """The input of a ``dims``-d block with as many elements as the 3D ``(N, C, T, H, W)``:
    frames folded into the batch for 2D, positions flattened for 1D."""
    n, c, t, h, w = shape_3d
    return {3: (n, c, t, h, w), 2: (n * t, c, h, w), 1: (n, c, t * h * w)}[dims]


def block_results(name: str, *, dims: int, shape_3d: Sequence[int], timing: Timing, kernel_size: int) -> list[Result]:
    """The registered attention ``name`` (variant ``cbam3d``) against its hand-written reference (variant
    ``naive``, ratios ``vs_naive:*``) where one exists, on the ``dims``-d input of :func:`block_shape`;
    ``kernel_size`` is CBAM's spatial kernel."""
    shape = block_shape(shape_3d, dims)
    torch.manual_seed(0)
    ours = create_attention(name, shape[1], dims, **attention_kwargs(name, kernel_size))
    variants = [Variant("naive", lambda: naive_like(ours))] if has_reference(ours) else []
    variants.append(Variant("cbam3d", lambda: ours))
    label = f"{name} {dims}d" + (f" k={kernel_size}" if name == "cbam" else "")
    results = measure_case(label, variants, shape=shape, timing=timing)
    add_ratios(results, "naive", "vs_naive")
    return results
