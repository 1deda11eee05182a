"""Picking the device and numeric precision for inference outside a Lightning Trainer."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["inference_autocast_dtype", "inference_device", "prepare_for_clips"]


def _available(device: torch.device) -> str | None:
    """Why ``device`` cannot run inference here, or None when it can."""
    if device.type == "cpu":
        return None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "no CUDA device is available"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return f"there are {torch.cuda.device_count()} CUDA device(s), numbered from 0"
        return None
    if device.type == "mps":
        return None if torch.backends.mps.is_available() else "the Apple MPS backend is not available here"
    return f"{device.type} devices are not supported for inference"


def inference_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> the first CUDA device if there is one, else the CPU; otherwise ``torch.device(name)``
    for ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` when that device is present.

    Raises:
        ValueError: a name torch does not know, an unsupported device type or a device that is not present;
            the message names the device, never the file about to be loaded onto it.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {name!r} is not a device name: use auto, cpu, cuda, cuda:N or mps") from None
    problem = _available(device)
    if problem is not None:
        raise ValueError(f"device {name!r}: {problem}; use auto, cpu, cuda, cuda:N or mps")
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
