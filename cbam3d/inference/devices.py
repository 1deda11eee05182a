"""Picking the device and numeric precision for inference outside a Lightning Trainer."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["inference_autocast_dtype", "inference_device", "prepare_for_clips"]


def inference_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> the first CUDA device if there is one, else the CPU; otherwise ``torch.device(name)``.

    Raises:
        ValueError: for a CUDA device when none is available, or a name torch does not know.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device {name!r}: {error}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: no CUDA device is available")
    return device


def inference_autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 autocast on GPUs that support it, float16 on older GPUs, full precision on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def prepare_for_clips(model: nn.Module, device: torch.device) -> bool:
    """Set ``model`` (already on ``device``) up for fixed-size clips there; returns whether its inputs go in
    ``channels_last_3d``.

    On CUDA: the network in ``channels_last_3d`` (cuDNN's fastest 3D convolutions, in bf16 / fp16, take that
    layout) and cuDNN's autotuning on (every clip has the same size, so the search pays once). Elsewhere nothing
    changes and the answer is False.
    """
    if device.type != "cuda":
        return False
    model.to(memory_format=torch.channels_last_3d)
    torch.backends.cudnn.benchmark = True
    return True
