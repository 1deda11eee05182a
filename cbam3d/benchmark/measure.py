"""Measuring networks side by side: median times, memory kept for backward, CUDA peak memory.

For each :class:`Variant` of a case, :func:`measure_case` fills a :class:`Result`:

- ``forward_ms``: the median time of a forward pass (training mode, autograd recording);
- ``train_ms``: the median time of forward + backward (the input requires grad, as inside a network);
- ``saved_mb`` / ``saved_ratio``: the bytes the forward pass keeps for backward (:func:`saved_bytes`), in MB
  and as a multiple of the input's size;
- ``peak_mb`` (CUDA only): the peak memory allocated during a training step, above what was allocated before it.

On CUDA, 5D inputs and the networks are in ``channels_last_3d``, as training runs them there (cuDNN's fastest 3D
convolutions, in bf16 / fp16, take that layout).

The timed repeats of all variants are interleaved, so that noise from other processes hits every variant alike.
:func:`add_ratios` then relates every variant to the case's baseline.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["Result", "Timing", "Variant", "add_ratios", "compiled", "measure_case", "saved_bytes"]


def saved_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the unique storages a forward pass of ``module`` on ``x`` saves for backward,
    not counting the module's parameters and buffers (the input counts when it is saved)."""
    excluded = {t.untyped_storage().data_ptr() for t in (*module.parameters(), *module.buffers())}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in excluded:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = module(x)
    del out
    return sum(storages.values())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step: Callable[[], None], device: torch.device) -> float:
    _synchronize(device)
    start = time.perf_counter()
    step()
    _synchronize(device)
    return (time.perf_counter() - start) * 1e3


@dataclass(frozen=True)
class Timing:
    """How the variants of a case are run: on ``device``, ``repeats`` timed runs each (0: memory only) after
    ``warmup`` untimed ones, under autocast to ``autocast_dtype`` (None: no autocast)."""

    device: torch.device
    repeats: int
    warmup: int
    autocast_dtype: torch.dtype | None = None


@dataclass
class Variant:
    """One network measured in a case: ``make()`` builds it; :func:`measure_case` moves it to the device and
    into training mode."""

    name: str
    make: Callable[[], nn.Module]


def compiled(make: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """A :attr:`Variant.make` building ``make()`` under ``torch.compile`` (compiled during the warm-up)."""
    return lambda: torch.compile(make())


@dataclass
class Result:
    """The figures of one variant of one case; ratios are filled in against the case's baselines."""

    case: str
    variant: str
    shape: tuple[int, ...]
    device: str
    dtype: str
    forward_ms: float | None = None
    train_ms: float | None = None
    saved_mb: float = 0.0
    saved_ratio: float | None = None
    peak_mb: float | None = None
    ratios: dict[str, float] = field(default_factory=dict)


def measure_case(case: str, variants: Sequence[Variant], *, shape: Sequence[int], timing: Timing) -> list[Result]:
    """Measure every variant on one random input of ``shape``, interleaving the timed repeats."""
    device = timing.device
    torch.manual_seed(0)
    memory_format = torch.channels_last_3d if device.type == "cuda" and len(shape) == 5 else torch.contiguous_format
    x = torch.randn(*shape, device=device).contiguous(memory_format=memory_format)
    modules = [variant.make().to(device, memory_format=memory_format).train() for variant in variants]
    grad_out = {}

    def autocast():
        return torch.autocast(device.type, dtype=timing.autocast_dtype, enabled=timing.autocast_dtype is not None)

    def forward(module: nn.Module) -> torch.Tensor:
        with autocast():
            return module(x)

    def train_step(module: nn.Module) -> None:
        x.grad = None
        out = forward(module)
        out.backward(grad_out.setdefault(out.shape, torch.randn_like(out)))

    x.requires_grad_(True)
    results = []
    for variant, module in zip(variants, modules):
        with autocast():
            saved = saved_bytes(module, x)
        results.append(
            Result(
                case,
                variant.name,
                tuple(shape),
                str(device),
                str(timing.autocast_dtype or x.dtype).replace("torch.", ""),
                saved_mb=saved / 2**20,
                saved_ratio=saved / (x.numel() * x.element_size()),
            )
        )
    for module in modules:
        for _ in range(timing.warmup):
            train_step(module)
    forward_times: list[list[float]] = [[] for _ in modules]
    train_times: list[list[float]] = [[] for _ in modules]
    for _ in range(timing.repeats):
        for index, module in enumerate(modules):
            forward_times[index].append(_timed(functools.partial(forward, module), device))
            train_times[index].append(_timed(functools.partial(train_step, module), device))
    for result, module, forward_ms, train_ms in zip(results, modules, forward_times, train_times):
        if timing.repeats:
            result.forward_ms, result.train_ms = statistics.median(forward_ms), statistics.median(train_ms)
        if device.type == "cuda":
            x.grad = None
            torch.cuda.synchronize(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            train_step(module)
            torch.cuda.synchronize(device)
            result.peak_mb = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    return results


def add_ratios(results: list[Result], baseline: str, label: str) -> None:
    """Set, for every variant of the case, ``ratios[label + ":train_speedup"]`` and
    ``ratios[label + ":forward_speedup"]`` (the baseline's time / the variant's, for the training step and
    the forward pass) and ``ratios[label + ":saved"]`` (the variant's saved memory / the baseline's), where
    both were measured."""
    reference = next((r for r in results if r.variant == baseline), None)
    if reference is None:
        return
    for result in results:
        if result.train_ms and reference.train_ms:
            result.ratios[f"{label}:train_speedup"] = reference.train_ms / result.train_ms
        if result.forward_ms and reference.forward_ms:
            result.ratios[f"{label}:forward_speedup"] = reference.forward_ms / result.forward_ms
        if reference.saved_mb:
            result.ratios[f"{label}:saved"] = result.saved_mb / reference.saved_mb
