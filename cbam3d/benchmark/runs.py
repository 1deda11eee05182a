"""The attention benchmark's runs: :class:`Settings` (what one run measures), the :data:`PRESETS`, and
:func:`run` (cbam3d's blocks against the hand-written ones, then the networks) and :func:`run_peers` (other
packages' blocks, then whole training steps)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from cbam3d.attention.registry import attention_names

from .blocks import block_results
from .measure import Result, Timing, add_ratios, measure_case
from .networks import model_results, training_step_results
from .peers import peer_cases, peer_variants
from .reports import markdown_table, peer_table, rows_of

__all__ = ["AMP_DTYPES", "PRESETS", "Settings", "run", "run_peers"]

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Settings:
    """What one benchmark run measures. :data:`PRESETS` holds the full and the quick (2-core CPU) runs."""

    block_shapes: list[tuple[int, int, int, int, int]]
    dims: list[int] = field(default_factory=lambda: [1, 2, 3])
    blocks: list[str] = field(default_factory=lambda: list(attention_names()))
    models: list[str] = field(default_factory=lambda: ["r3d_18", "resnet3d-18", "resnet3d-50"])
    model_attention: list[str] = field(default_factory=lambda: list(attention_names()))
    clip: tuple[int, int, int, int, int] = (2, 3, 8, 112, 112)
    repeats: int = 10
    model_repeats: int = 5
    warmup: int = 2
    kernel_size: int = 7
    device: str = "cpu"
    amp: str | None = None
    # the comparison with other packages' blocks and the whole training steps (run_peers)
    peers: bool = False
    peer_shape_3d: tuple[int, int, int, int, int] = (8, 64, 8, 28, 28)
    peer_shape_2d: tuple[int, int, int, int] = (16, 256, 28, 28)
    compile_blocks: bool = True
    step_model: str = "r3d_18"
    step_clip: tuple[int, int, int, int, int] = (2, 3, 8, 56, 56)
    step_repeats: int = 5
    step_attention: list[str] = field(default_factory=lambda: list(attention_names()))
    compile_networks: bool = False


PRESETS: dict[str, Settings] = {
    "full": Settings(block_shapes=[(8, 64, 8, 56, 56), (8, 256, 4, 14, 14)]),
    # For a small CPU: the target shape, fewer repeats, and the networks' memory without timing them.
    "quick": Settings(block_shapes=[(8, 64, 8, 28, 28), (8, 256, 4, 14, 14)], repeats=5, model_repeats=0, warmup=1),
}


def run(settings: Settings, log: Callable[[str], None] = print) -> list[Result]:
    """Every block case, then every network case, of ``settings`` (under autocast to ``settings.amp``);
    ``log`` gets the rows of each case as it is measured."""
    amp = AMP_DTYPES[settings.amp] if settings.amp else None
    timing = Timing(torch.device(settings.device), settings.repeats, settings.warmup, amp)
    results: list[Result] = []
    for shape in settings.block_shapes:
        for dims in settings.dims:
            for name in settings.blocks:
                case = block_results(name, dims=dims, shape_3d=shape, timing=timing, kernel_size=settings.kernel_size)
                results += case
                log(rows_of(markdown_table(case)))
    for model_name in settings.models:
        case = model_results(
            model_name,
            attention=settings.model_attention,
            clip=settings.clip,
            timing=replace(timing, repeats=settings.model_repeats),
            kernel_size=settings.kernel_size,
        )
        results += case
        log(rows_of(markdown_table(case)))
    return results


def run_peers(settings: Settings, log: Callable[[str], None] = print) -> list[Result]:
    """The peers' block cases (ratios against each case's baseline), then the whole training steps, of
    ``settings``, under autocast to ``settings.amp`` as :func:`run`; ``log`` gets the rows of each case and a note
    for each peer left out."""
    amp = AMP_DTYPES[settings.amp] if settings.amp else None
    timing = Timing(torch.device(settings.device), settings.repeats, settings.warmup, amp)
    results = []
    for case in peer_cases(settings.peer_shape_3d, settings.peer_shape_2d, settings.kernel_size):
        variants = peer_variants(case, compile_blocks=settings.compile_blocks, note=log)
        measured = measure_case(case.label, variants, shape=case.shape, timing=timing)
        add_ratios(measured, case.baseline, f"vs {case.baseline}")
        results += measured
        log(rows_of(peer_table(measured)))
    steps = training_step_results(
        settings.step_model,
        attention=settings.step_attention,
        clip=settings.step_clip,
        timing=replace(timing, repeats=settings.step_repeats),
        kernel_size=settings.kernel_size,
        compile_networks=settings.compile_networks,
    )
    log(rows_of(peer_table(steps)))
    return results + steps
