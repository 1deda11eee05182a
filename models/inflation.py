"""I3D-style inflation: initialise a 3D network from a 2D network's weights, attention included.

Every 3D tensor whose 2D counterpart (same name) has one dimension less is inflated along time: a 2D
kernel ``(C_out, C_in, k, k)`` becomes ``(C_out, C_in, kt, k, k)``. Tensors of equal shape (BatchNorm,
Linear, CBAM's channel MLP, BAM's BatchNorm1d) are copied. Names must match, which they do between
``models.resnet2d(d, attention=...)`` and ``models.resnet3d(d, attention=...)`` (and torchvision's 2D
``resnet18`` and this package's ``r3d_18`` / ``mc3_18``).

Modes and the identical-frames property (a clip whose frames all equal one image):

- ``"centre"``: the 2D kernel sits at the temporal centre, the other ``kt - 1`` slices are zero. Each
  output frame is the 2D conv of the matching input frame, whatever the padding, so on a clip of
  identical frames every feature map equals the 2D one frame by frame and **the 3D network's output
  equals the 2D network's** (exactly, up to float rounding; train-mode BatchNorm statistics agree too).
  Needs odd temporal kernels.
- ``"repeat"`` (Carreira & Zisserman): the 2D kernel is repeated ``kt`` times and divided by ``kt``. On
  identical frames a conv reproduces the 2D response only where its whole temporal window lies inside
  the clip; within ``kt // 2`` frames of either end the zero padding removes taps and scales the
  response by the fraction of taps that remain. Through a deep network these edge effects spread, so
  the end-to-end output differs from the 2D one; the property holds exactly only when no temporal
  padding is involved (e.g. kernels with ``kt = 1``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import torch
from torch import Tensor, nn

InflationMode = Literal["centre", "repeat"]
MODES = ("centre", "repeat")


def inflate_tensor(weight_2d: Tensor, kernel_t: int, mode: InflationMode = "centre") -> Tensor:
    """``(C_out, C_in, *k)`` -> ``(C_out, C_in, kernel_t, *k)`` by centring or repeating over time."""
    if mode not in MODES:
        raise ValueError(f"unknown inflation mode {mode!r}; expected one of {MODES}")
    if weight_2d.dim() < 3:
        raise ValueError(f"can only inflate conv kernels (C_out, C_in, *k), got shape {tuple(weight_2d.shape)}")
    if mode == "repeat":
        return weight_2d.unsqueeze(2).repeat_interleave(kernel_t, dim=2) / kernel_t
    if kernel_t % 2 == 0:
        raise ValueError(f"'centre' inflation needs an odd temporal kernel, got {kernel_t}")
    out = weight_2d.new_zeros(weight_2d.shape[:2] + (kernel_t,) + weight_2d.shape[2:])
    out[:, :, kernel_t // 2] = weight_2d
    return out


def inflatable(shape_2d: torch.Size, shape_3d: torch.Size) -> bool:
    """Whether a 3D tensor of ``shape_3d`` is a 2D one of ``shape_2d`` with one more (temporal) kernel
    dimension after (out, in): (O, I, kh, kw) -> (O, I, kt, kh, kw)."""
    return (
        len(shape_3d) == len(shape_2d) + 1
        and len(shape_2d) >= 3
        and (shape_3d[:2] == shape_2d[:2] and shape_3d[3:] == shape_2d[2:])
    )


def inflate(
    state_dict_2d: Mapping[str, Tensor],
    model_3d: nn.Module,
    mode: InflationMode = "centre",
    exclude: Iterable[str] = (),
) -> nn.Module:
    """Load ``state_dict_2d`` into ``model_3d``, inflating conv kernels over time; returns ``model_3d``.

    Args:
        state_dict_2d: weights of the 2D network (e.g. ``resnet2d(50, attention="cbam").state_dict()`` or
            ``cbam3d.from_official(checkpoint)``).
        model_3d: the 3D network with the same parameter names (e.g. ``resnet3d(50, attention="cbam")``).
        mode: ``"centre"`` or ``"repeat"``; see the module docstring for when the 3D network then
            reproduces the 2D one on a clip of identical frames.
        exclude: name prefixes to leave as ``model_3d`` has them and to ignore in ``state_dict_2d``,
            e.g. ``("fc.",)`` to keep a new classifier when the class counts differ.

    Raises:
        ValueError: a 3D tensor has no 2D counterpart, a 2D tensor has no 3D counterpart, or their
            shapes differ by more than a temporal kernel dimension (all listed), or a bad ``mode``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown inflation mode {mode!r}; expected one of {MODES}")
    prefixes = tuple(exclude)
    target = model_3d.state_dict()

    def kept(key: str) -> bool:
        return not prefixes or not key.startswith(prefixes)

    missing = [k for k in target if kept(k) and k not in state_dict_2d]
    unexpected = [k for k in state_dict_2d if kept(k) and k not in target]
    mismatched, inflated = [], {}
    for key, tensor_3d in target.items():
        if not kept(key) or key not in state_dict_2d:
            continue
        tensor_2d = state_dict_2d[key]
        if tensor_2d.shape == tensor_3d.shape:
            inflated[key] = tensor_2d
        elif inflatable(tensor_2d.shape, tensor_3d.shape):
            inflated[key] = inflate_tensor(tensor_2d, tensor_3d.shape[2], mode)
        else:
            mismatched.append(f"{key}: 2D {tuple(tensor_2d.shape)} vs 3D {tuple(tensor_3d.shape)}")
    problems = []
    if missing:
        problems.append(f"3D tensors without a 2D counterpart: {missing[:8]}")
    if unexpected:
        problems.append(f"2D tensors the 3D network lacks: {unexpected[:8]}")
    if mismatched:
        problems.append(f"shapes that are not a temporal inflation: {mismatched[:8]}")
    if problems:
        hint = " (pass exclude=('fc.',) to keep the 3D classifier)" if any("fc." in p for p in problems) else ""
        raise ValueError(f"cannot inflate into {type(model_3d).__name__}: " + "; ".join(problems) + hint)
    model_3d.load_state_dict({**target, **inflated})
    return model_3d
