"""Efficient Channel Attention (Wang et al., "ECA-Net", CVPR 2020), in any number of dimensions.

ECA weights each channel by ``sigmoid(conv1d(avgpool(x)))``: a 1-D convolution of kernel ``k`` slides
across the channel axis of the pooled descriptor, so each channel's weight sees its ``k`` neighbours and
the gate has only ``k`` parameters, no bottleneck MLP.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import AttentionModule
from .dims import channel_map, check_positive_int, odd_kernel, spatial_axes
from .registry import register_attention

__all__ = ["ECA", "eca_kernel_size"]


def eca_kernel_size(channels: int, *, gamma: int = 2, beta: int = 1) -> int:
    """The paper's adaptive kernel (eq. 12): ``t = int(|(log2(C) + beta) / gamma|)``, made odd (``t + 1``
    when even) so the convolution keeps the channel count.

    With the defaults: 3 for 8 <= C < 128 (1 below 8), 5 for 128 <= C < 2048, 7 up to 32768.
    """
    channels = check_positive_int(channels, "channels")
    t = int(abs((math.log2(channels) + beta) / gamma))
    return t if t % 2 else t + 1


class ECA(AttentionModule):
    """Efficient Channel Attention: global average pool -> Conv1d(1, 1, k) across channels, no bias ->
    sigmoid -> scale.

    Args:
        channels: C; None to take it from the first input (needed only for the adaptive kernel).
        dims: 1, 2 or 3 for inputs (N, C, L), (N, C, H, W), (N, C, T, H, W).
        kernel_size: an odd kernel size across channels; None picks it from C (:func:`eca_kernel_size`).
        gamma, beta: the adaptive kernel's constants (the paper's 2 and 1).

    Shape:
        input (N, C, *spatial); output the same; :meth:`attention` gives (N, C, 1, ...) with ``dims`` ones.
    """

    map_kind = "channel"

    def __init__(
        self,
        channels: int | None = None,
        dims: int = 2,
        *,
        kernel_size: int | None = None,
        gamma: int = 2,
        beta: int = 1,
    ) -> None:
        super().__init__(dims)
        self.gamma = check_positive_int(gamma, "gamma")
        if isinstance(beta, bool) or not isinstance(beta, int):
            raise TypeError(f"beta must be an int, got {type(beta).__name__}")
        self.beta = beta
        self.conv: nn.Conv1d | None = None
        # With a fixed kernel the parameters do not depend on C; with the adaptive one they do.
        self.has_channel_parameters = kernel_size is None
        if kernel_size is not None:
            self.conv = _channel_conv(odd_kernel(kernel_size, 1)[0])
        self.init_channels(channels)

    def build(self, channels: int) -> None:
        if self.conv is None:
            self.conv = _channel_conv(eca_kernel_size(channels, gamma=self.gamma, beta=self.beta))

    @property
    def kernel_size(self) -> int | None:
        """The convolution's kernel across channels, or None while a lazy module waits for its input."""
        return None if self.conv is None else self.conv.kernel_size[0]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # C cannot be read back from k, so a lazy ECA builds its convolution from the stored kernel.
        weight = state_dict.get(prefix + "conv.weight")
        if self.conv is None and weight is not None and weight.ndim == 3:
            self.conv = _channel_conv(weight.shape[-1])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *spatial) -> (N, C): the convolved descriptor, before the sigmoid."""
        pooled = x.mean(dim=spatial_axes(x))
        return self.conv(pooled.unsqueeze(1)).squeeze(1)

    def attention_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *spatial) -> channel weights (N, C, 1, ...) in (0, 1)."""
        weights = channel_map(torch.sigmoid(self.logits(x)), self.dims)
        self.report_map(weights)
        return weights

    def forward_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention_unchecked(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kernel_size={self.kernel_size}"


def _channel_conv(kernel_size: int) -> nn.Conv1d:
    return nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)


register_attention("eca", ECA)
