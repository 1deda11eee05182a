"""What every attention module in cbam3d shares: input checks, lazy channels and map hooks."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from .dims import INPUT_LAYOUT, check_dims, check_positive_int

MapHook = Callable[[nn.Module, torch.Tensor], None]


def pass_empty(x: torch.Tensor) -> torch.Tensor:
    """An input with no elements (e.g. a batch of 0), returned as a new tensor of its shape, autograd kept.

    The checked forwards return this instead of running their gates: pooling over no elements divides by
    zero, and the fused backward kernels stop the interpreter on a zero-size batch.
    """
    return x.clone()


class AttentionModule(nn.Module):
    """Base class of the gates and blocks.

    Subclasses whose parameters depend on the channel count implement ``build(channels)`` and
    ``channels_in_state_dict`` and call ``init_channels(channels)`` at the end of ``__init__``. With
    ``channels=None`` the module is lazy: it is built by its first input (as torch's ``LazyLinear`` is),
    or by ``load_state_dict``. Build a lazy model with one forward pass before handing its parameters to
    an optimizer or wrapping it in DistributedDataParallel.

    A gate implements :meth:`forward_unchecked` (and :meth:`attention_unchecked`, the map alone); the
    inherited :meth:`forward` and :meth:`attention` check the input first. A block that holds gates checks
    its input once and calls their unchecked methods.

    Map hooks see each attention map a gate computes (after the sigmoid), without changing the output.
    """

    #: True for modules whose parameters depend on the channel count (and so can be lazy).
    has_channel_parameters: bool = False

    #: The kind of map this module reports to its map hooks: ``"channel"`` (N, C, 1, ...), ``"spatial"``
    #: (N, 1, *spatial), ``"temporal"`` (N, 1, T, 1, 1) or ``"combined"`` (N, C, *spatial); None for a
    #: module that reports no map of its own (a block whose gates report theirs) or whose maps are
    #: classified by their shape (see :mod:`cbam3d.attention.hooks`).
    map_kind: str | None = None

    def __init__(self, dims: int) -> None:
        super().__init__()
        self.dims = check_dims(dims)
        self._channels: int | None = None
        self._map_hooks: OrderedDict[int, MapHook] = OrderedDict()

    # --- channels -------------------------------------------------------------------------------
    @property
    def channels(self) -> int | None:
        """The channel count the module was built for, or None while it is still lazy."""
        return self._channels

    def init_channels(self, channels: int | None) -> None:
        """Build now for ``channels``, or wait for the first input when it is None."""
        if channels is not None:
            self.build(check_positive_int(channels, "channels"))
            self._channels = channels

    def build(self, channels: int) -> None:
        """Create the channel-dependent layers (modules with ``has_channel_parameters``)."""
        raise NotImplementedError(f"{type(self).__name__} has no channel-dependent parameters")

    def channels_in_state_dict(self, state_dict: dict, prefix: str) -> int | None:
        """The channel count a state_dict was saved with, so a lazy module can load it."""
        return None

    def _materialize(self, x: torch.Tensor) -> None:
        device = x.device
        dtype = torch.get_default_dtype() if torch.is_autocast_enabled(device.type) else x.dtype
        self.init_channels(x.shape[1])
        self.to(device=device, dtype=dtype)
        self.train(self.training)  # new layers start in training mode: give them the module's current mode

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self._channels is None and self.has_channel_parameters:
            channels = self.channels_in_state_dict(state_dict, prefix)
            if channels is not None:
                self.init_channels(channels)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # --- input checks ---------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear error unless ``x`` is a floating-point tensor of the module's parameters' dtype (any
        floating dtype while the module is lazy or under autocast), of the layout ``dims`` expects and with the
        module's channel count (any count while the module is lazy)."""
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} expects a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} expects a floating-point tensor, got dtype {x.dtype}; convert it with x.float()")
        parameter = next(self.parameters(), None)
        if parameter is not None and parameter.dtype != x.dtype and not torch.is_autocast_enabled(x.device.type):
            # as torch's own layers do, rather than compute in a dtype the parameters are not in
            raise TypeError(
                f"{name} holds {parameter.dtype} parameters but got a {x.dtype} input: convert the module "
                f"(module.to({x.dtype})) or the input (x.to({parameter.dtype})), or run under torch.autocast"
            )
        if x.ndim != self.dims + 2:
            raise ValueError(
                f"{name}(dims={self.dims}) expects a {self.dims + 2}-D input {INPUT_LAYOUT[self.dims]}, "
                f"got a {x.ndim}-D tensor of shape {tuple(x.shape)}"
            )
        if self.channels is not None and x.shape[1] != self.channels:
            raise ValueError(
                f"{name} was built for {self.channels} channels, got an input with {x.shape[1]} "
                f"channels (shape {tuple(x.shape)}, channels on axis 1)"
            )

    def build_lazy(self, x: torch.Tensor) -> None:
        """Build a lazy module for the channel count, device and dtype of a checked input ``x``."""
        if self.channels is None and self.has_channel_parameters:
            self._materialize(x)

    def prepare_input(self, x: torch.Tensor) -> None:
        """:meth:`check_input`, then :meth:`build_lazy`: what a forward pass does first."""
        self.check_input(x)
        self.build_lazy(x)

    # --- the call ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *spatial) -> the same shape: :meth:`prepare_input`, then :meth:`forward_unchecked`."""
        self.prepare_input(x)
        if x.numel() == 0:
            return pass_empty(x)
        return self.forward_unchecked(x)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The map the input is multiplied by: :meth:`prepare_input`, then :meth:`attention_unchecked`."""
        self.prepare_input(x)
        return self.attention_unchecked(x)

    def forward_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for an ``x`` already checked, with the module built."""
        raise NotImplementedError(f"{type(self).__name__} implements neither forward nor forward_unchecked")

    def attention_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`attention` for an ``x`` already checked, with the module built."""
        raise NotImplementedError(f"{type(self).__name__} computes no attention map of its own")

    # --- map hooks ------------------------------------------------------------------------------
    def register_map_hook(self, hook: MapHook) -> RemovableHandle:
        """Call ``hook(module, attention_map)`` each time this module computes its attention map.

        The map is the tensor the input is multiplied by, broadcastable to the input, e.g.
        (N, C, 1, 1, 1) for channel weights or (N, 1, T, H, W) for a spatio-temporal map.
        Returns a handle whose ``remove()`` unregisters the hook.
        """
        handle = RemovableHandle(self._map_hooks)
        self._map_hooks[handle.id] = hook
        return handle

    def report_map(self, attention_map: torch.Tensor) -> None:
        """Pass ``attention_map`` to the registered map hooks (a no-op when there are none)."""
        for hook in self._map_hooks.values():
            hook(self, attention_map)

    def report_logits(self, logits: torch.Tensor) -> None:
        """Pass ``sigmoid(logits)`` to the map hooks, computing it only when a hook is registered."""
        if self._map_hooks:
            self.report_map(torch.sigmoid(logits))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, dims={self.dims}"
