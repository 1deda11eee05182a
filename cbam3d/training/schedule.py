"""Learning-rate schedule: linear warmup, then a half-cosine decay, stepped once per optimizer step."""

from __future__ import annotations

import math

__all__ = ["warmup_cosine"]


def warmup_cosine(step: int, *, warmup_steps: int, total_steps: int, final_ratio: float = 0.0) -> float:
    """The factor applied to the base learning rate at optimizer step ``step`` (0-based).

    Rises linearly from ``1 / (warmup_steps + 1)`` to 1 over the first ``warmup_steps`` steps, then follows a
    half cosine from 1 down to ``final_ratio`` at ``total_steps``; stays at ``final_ratio`` after that.

    Raises:
        ValueError: if ``total_steps`` < 1, ``warmup_steps`` < 0 or ``final_ratio`` is outside [0, 1].
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1, got {total_steps}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be 0 or more, got {warmup_steps}")
    if not 0.0 <= final_ratio <= 1.0:
        raise ValueError(f"final_ratio must be in [0, 1], got {final_ratio}")
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
