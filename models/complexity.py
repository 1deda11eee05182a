"""Parameter and FLOP counts of the video models, and the README table built from them.

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
TABLE_START = "<!-- model-table:start -->"
TABLE_END = "<!-- model-table:end -->"

PUBLISHED: dict[str, tuple[int, float, str]] = {
    "r3d_18": (33_371_472, 40.697, "torchvision"),
    "mc3_18": (11_695_440, 43.343, "torchvision"),
    "r2plus1d_18": (31_505_325, 40.519, "torchvision"),
}
"""Published (parameters, GMACs at 3 x 16 x 112 x 112, source) of the models without attention."""


TABLE_NOTES = """\
Notes: `r3d_18`, `mc3_18` and `r2plus1d_18` match torchvision's published parameter counts exactly and
its GFLOPs to the third decimal. `resnet3d-N` / `r2plus1d-N` (the 3D-ResNets-PyTorch family) have no
published FLOPs; they use a 7x7x7 stem (7x7 then 7x1x1 for (2+1)D) followed by a stride-2 max pool over
T, H and W, so at the same depth they compute about 5x fewer multiply-adds than torchvision's networks,
which have a 3x7x7 stem and no max pool; the wider stem adds 37,632 parameters at depth 18. GFLOPs count
convolutions and matrix products only; the gates' elementwise products, BatchNorm and pooling are
excluded, as in the published figures. SE and CBAM add the same channel MLPs, so their parameters differ
only by CBAM's small spatial convolution and BatchNorm per block; BAM adds modules after three stages only.\
"""


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


def _cell(value: Complexity) -> str:
    return f"{value.parameters / 1e6:.2f}M / {value.gmacs:.2f}"


def markdown_table(measured: dict[tuple[str, str | None], Complexity], clip_shape: Sequence[int] = CLIP_SHAPE) -> str:
    """One row per model, one column per attention (``params / GFLOPs``), plus the published figures."""
    names = list(dict.fromkeys(name for name, _ in measured))
    attentions = list(dict.fromkeys(attention for _, attention in measured))
    header = ["Model"] + [f"+ {a.upper()}" if a else "no attention" for a in attentions] + ["published (no attention)"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for name in names:
        cells = [f"`{name}`"] + [_cell(measured[(name, a)]) for a in attentions]
        if name in PUBLISHED:
            params, gmacs, source = PUBLISHED[name]
            cells.append(f"{params / 1e6:.2f}M / {gmacs:.2f} ({source})")
        else:
            cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    shape = " x ".join(str(s) for s in clip_shape)
    caption = (
        f"Parameters / GFLOPs (multiply-adds, one {shape} clip, 400 classes), generated by `scripts/model_table.py`."
    )
    return caption + "\n\n" + "\n".join(lines) + "\n\n" + TABLE_NOTES


def replace_between_markers(text: str, content: str, start: str = TABLE_START, end: str = TABLE_END) -> str:
    """Replace what lies between the ``start`` and ``end`` markers of ``text`` with ``content``."""
    first, last = text.find(start), text.find(end)
    if first < 0 or last < 0 or last < first:
        raise ValueError(f"expected the markers {start!r} and then {end!r} in the text")
    return text[: first + len(start)] + "\n" + content.strip() + "\n" + text[last:]
