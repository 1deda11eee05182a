"""How a fused gate becomes one ``torch.autograd.Function``: the forward and backward written once for all.

A gate subclasses :class:`FusedFunction` and writes only its mathematics, on named bundles (NamedTuples):

- ``Inputs``: x first, then the gate's parameters and settings, nested bundles allowed
  (e.g. ``(x, pool_types, mlp: MLPParameters)``);
- ``compute(inputs) -> Computed``: the output, the maps for hooks, and the ``Saved`` bundle of tensors
  backward needs besides x;
- ``gradients(grad_output, kept) -> bundle``: the gradients, named like the inputs they belong to
  (e.g. ``(x, mlp: MLPParameters)``); inputs it does not name get None.

``Function.apply`` tracks only tensors passed to it positionally, so each Function's ``run`` flattens the
inputs bundle into apply's arguments (nested bundles spliced in, in field order) and the wiring rebuilds
it in forward; backward's named gradients go back through the same layout into apply's positional
order. The wiring also saves x (no copy) with the ``Saved`` tensors, keeps the inputs' non-tensor
settings on ``ctx``, turns autocast off around ``compute`` (the large products run in x's dtype, the
small parts in the parameters'), marks the maps non-differentiable and makes backward
``once_differentiable``.

A subclass with ``recomputes_input = True`` is the same gate applied to a BatchNorm's output: it saves
the BatchNorm's input and its per-channel affine (:class:`NormAffine`) instead of x, which the
BatchNorm keeps for its own backward anyway, and recomputes x in backward (see
:mod:`cbam3d.attention.after_norm`).
"""

from __future__ import annotations

import contextlib
import typing
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..dims import channel_map


# --- bundles as apply's positional arguments ------------------------------------------------------------
class BundleLayout(NamedTuple):
    """How a bundle type flattens: per field, the layout of a nested bundle or None for one value; and
    the number of values the whole bundle flattens to."""

    bundle: type
    fields: tuple[BundleLayout | None, ...]
    size: int


def _is_bundle(annotation: Any) -> bool:
    # _fields first: a generic alias such as tuple[str, ...] passes for a type on Python 3.10
    return hasattr(annotation, "_fields") and isinstance(annotation, type) and issubclass(annotation, tuple)


def bundle_layout(bundle: type) -> BundleLayout:
    """The layout of a NamedTuple type whose fields annotated with a NamedTuple type are nested bundles."""
    annotations = typing.get_type_hints(bundle)
    fields = tuple(
        bundle_layout(annotations[name]) if _is_bundle(annotations[name]) else None for name in bundle._fields
    )
    return BundleLayout(bundle, fields, sum(1 if field is None else field.size for field in fields))


def flatten(layout: BundleLayout, bundle: tuple) -> tuple:
    """The bundle's values in field order, nested bundles spliced in: ``layout.size`` values."""
    values = []
    for field, value in zip(layout.fields, bundle):
        values.extend((value,) if field is None else flatten(field, value))
    return tuple(values)


def unflatten(layout: BundleLayout, values: tuple) -> Any:
    """The bundle :func:`flatten` made ``values`` from."""
    fields, start = [], 0
    for field in layout.fields:
        if field is None:
            fields.append(values[start])
            start += 1
        else:
            fields.append(unflatten(field, values[start : start + field.size]))
            start += field.size
    return layout.bundle(*fields)


def without_tensors(layout: BundleLayout, bundle: tuple) -> Any:
    """The bundle with every tensor replaced by None: its settings (pool types, BatchNorm settings...)."""
    return unflatten(layout, tuple(None if isinstance(value, Tensor) else value for value in flatten(layout, bundle)))


def gradients_in_input_order(layout: BundleLayout, gradients: tuple) -> tuple:
    """``gradients``, a bundle whose fields name fields of the inputs bundle (a nested bundle for a nested
    one), as ``layout.size`` positional values in the inputs' order, None for every input it does not name."""
    named = dict(zip(gradients._fields, gradients))
    unknown = [name for name in named if name not in layout.bundle._fields]
    if unknown:
        raise TypeError(f"{type(gradients).__name__} names {sorted(unknown)}, not fields of {layout.bundle.__name__}")
    values = []
    for name, field in zip(layout.bundle._fields, layout.fields):
        gradient = named.get(name)
        if field is None:
            values.append(gradient)
        elif gradient is None:
            values.extend((None,) * field.size)
        else:
            values.extend(gradients_in_input_order(field, gradient))
    return tuple(values)


# --- the input recomputed from the BatchNorm before the gate ------------------------------------------
class NormAffine(NamedTuple):
    """One BatchNorm call as a per-channel affine map, ``output = norm_input * scale + shift``: norm_input
    (N, C, *spatial), scale and shift (C,) in at least float32 (from
    :func:`cbam3d.attention.after_norm.norm_affine`)."""

    norm_input: Tensor
    scale: Tensor
    shift: Tensor


def norm_output_again(norm: NormAffine, dtype: torch.dtype) -> Tensor:
    """The BatchNorm's output recomputed from its input: (N, C, *spatial), computed in the precision of
    ``scale`` (at least float32) and rounded once to ``dtype``, the output's, as the BatchNorm does."""
    dims = norm.norm_input.ndim - 2
    return torch.addcmul(channel_map(norm.shift, dims), norm.norm_input, channel_map(norm.scale, dims)).to(dtype)


# --- the Function ------------------------------------------------------------------------------------
def autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast disabled inside, on devices that have autocast (the ``meta`` device has none)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


class Computed(NamedTuple):
    """What a gate's forward gives the wiring: the differentiable output, the tensors backward needs
    besides x (the Function's ``Saved`` bundle) and non-differentiable maps for map hooks."""

    output: Tensor
    saved: Any
    maps: tuple[Tensor, ...] = ()


class Kept(NamedTuple):
    """What a gate's backward has from its forward: x (saved, or recomputed), the ``Saved`` bundle, the
    inputs' settings (the ``Inputs`` bundle with every tensor None) and whether x was recomputed. A
    recomputed x may differ from the forward's in the last bits, so maxima are taken again from it (a
    saved maximum no element attains anymore would give the max its gradient nowhere)."""

    x: Tensor
    saved: Any
    settings: Any
    recomputed: bool


class _Wiring(NamedTuple):
    """What a Function's forward, backward and ``run`` need to know of its class, bound to them when the
    class is made: torch.compile cannot read data attributes of a Function class, only call its methods."""

    inputs: BundleLayout
    saved: BundleLayout
    recomputes_input: bool


class FusedFunction(torch.autograd.Function):
    """An autograd Function from a gate's ``Inputs``, ``Saved``, :meth:`compute` and :meth:`gradients`
    (see the module's docstring). Call it with ``run(inputs, norm=None)``: ``apply`` on an ``Inputs``
    bundle, and ``norm``, the BatchNorm x came out of, for a Function that recomputes x from it (and
    only for one).

    Returns the output alone when :meth:`compute` gives no maps, else ``(output, *maps)``.
    """

    Inputs: ClassVar[type]
    Saved: ClassVar[type]
    recomputes_input: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        wiring = _Wiring(bundle_layout(cls.Inputs), bundle_layout(cls.Saved), cls.recomputes_input)

        # autograd calls forward and backward as static methods of each class, and torch.compile reads no
        # data attribute of a Function class: so each class gets its own, bound to its wiring.
        def forward(ctx, *values):
            return _forward(cls, wiring, ctx, values)

        def backward(ctx, *grad_outputs):
            return _backward(cls, wiring, ctx, grad_outputs)

        def run(inputs: tuple, norm: NormAffine | None = None) -> Any:
            """``apply`` on an ``Inputs`` bundle; ``norm`` for a Function that recomputes x from it."""
            return _run(cls, wiring, inputs, norm)

        cls.forward = staticmethod(forward)
        cls.backward = staticmethod(once_differentiable(backward))
        cls.run = staticmethod(run)

    @staticmethod
    def compute(inputs: Any) -> Computed:
        """The gate's forward on its ``Inputs`` bundle (autocast off)."""
        raise NotImplementedError

    @staticmethod
    def gradients(grad_output: Tensor, kept: Kept) -> Any:
        """The gate's backward: the gradients from that of the output, named like the inputs."""
        raise NotImplementedError


def _run(cls: type[FusedFunction], wiring: _Wiring, inputs: tuple, norm: NormAffine | None) -> Any:
    if (norm is None) == wiring.recomputes_input:
        raise TypeError(f"{cls.__name__}.run: norm must be {'a NormAffine' if wiring.recomputes_input else 'None'}")
    return cls.apply(*flatten(wiring.inputs, inputs), *(norm or ()))


def _forward(cls: type[FusedFunction], wiring: _Wiring, ctx: Any, values: tuple) -> Any:
    inputs = unflatten(wiring.inputs, values[: wiring.inputs.size])
    x = inputs.x
    with autocast_off(x.device.type):
        computed = cls.compute(inputs)
    kept = values[wiring.inputs.size :] if wiring.recomputes_input else (x,)
    ctx.save_for_backward(*kept, *flatten(wiring.saved, computed.saved))
    ctx.settings, ctx.input_dtype = without_tensors(wiring.inputs, inputs), x.dtype
    if not computed.maps:
        return computed.output
    ctx.mark_non_differentiable(*computed.maps)
    return computed.output, *computed.maps


def _backward(cls: type[FusedFunction], wiring: _Wiring, ctx: Any, grad_outputs: tuple) -> tuple:
    # grad_outputs: the output's gradient, then the maps' (None: they are not differentiable).
    saved_tensors = ctx.saved_tensors
    if wiring.recomputes_input:
        kept_count = len(NormAffine._fields)
        x = norm_output_again(NormAffine(*saved_tensors[:kept_count]), ctx.input_dtype)
    else:
        kept_count, x = 1, saved_tensors[0]
    saved = unflatten(wiring.saved, saved_tensors[kept_count:])
    gradients = cls.gradients(grad_outputs[0], Kept(x, saved, ctx.settings, wiring.recomputes_input))
    in_order = gradients_in_input_order(wiring.inputs, gradients)
    return in_order + (None,) * kept_count if wiring.recomputes_input else in_order
