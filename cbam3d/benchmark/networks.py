"""The whole-network cases: a video network without attention, with each of cbam3d's attention modules and
with the hand-written blocks (the memory kept for backward, the ``--models`` rows), and its whole training
steps, eager and compiled (the ``--peers`` run's step rows)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from cbam3d.attention.registry import create_attention, get_attention
from cbam3d.models import create_model

from .blocks import attention_kwargs
from .measure import Result, Timing, Variant, add_ratios, compiled, measure_case
from .reference import has_reference, naive_like

__all__ = ["model_results", "training_step_results"]


def _network(model_name: str, attention=None, options: dict | None = None) -> Callable[[], nn.Module]:
    return lambda: create_model(model_name, attention=attention, attention_kwargs=options)


def _naive_factory(name: str, kernel_size: int) -> Callable[[int, int], nn.Module]:
    kwargs = attention_kwargs(name, kernel_size)
    return lambda channels, dims: naive_like(create_attention(name, channels, dims, **kwargs))


def model_results(
    model_name: str, *, attention: Sequence[str], clip: Sequence[int], timing: Timing, kernel_size: int
) -> list[Result]:
    """``model_name`` on a ``clip`` (N, C, T, H, W) without attention (``plain``, the baseline of the
    ``vs_plain:*`` ratios), with each of cbam3d's ``attention`` and with the hand-written blocks (``naive-*``,
    for the block attentions that have one; a custom module goes in every block, so not BAM)."""
    variants = [Variant("plain", _network(model_name))]
    for name in attention:
        variants.append(Variant(name, _network(model_name, name, attention_kwargs(name, kernel_size))))
        if get_attention(name).placement == "block" and has_reference(create_attention(name, 8, 3)):
            variants.append(Variant(f"naive-{name}", _network(model_name, _naive_factory(name, kernel_size))))
    results = measure_case(model_name, variants, shape=clip, timing=timing)
    add_ratios(results, "plain", "vs_plain")
    return results


def training_step_results(
    model_name: str,
    *,
    attention: Sequence[str],
    clip: Sequence[int],
    timing: Timing,
    kernel_size: int,
    compile_networks: bool,
) -> list[Result]:
    """Whole forward + backward passes of ``model_name`` on ``clip``, plain and with each of ``attention``,
    eager (ratios against ``plain``) and, with ``compile_networks``, compiled (against ``plain compiled``);
    the case is ``"<model_name> step"``."""
    results = []
    for is_compiled in (False, True) if compile_networks else (False,):
        suffix = " compiled" if is_compiled else ""
        variants = []
        for name in (None, *attention):
            make = _network(model_name, name, attention_kwargs(name, kernel_size))
            variants.append(Variant(f"{name or 'plain'}{suffix}", compiled(make) if is_compiled else make))
        measured = measure_case(f"{model_name} step", variants, shape=clip, timing=timing)
        add_ratios(measured, f"plain{suffix}", f"vs plain{suffix}")
        results += measured
    return results
