"""The learning-rate schedule (cbam3d.training.schedule): a linear warm-up to the peak, then a cosine decay to the
final ratio."""

import pytest

from cbam3d.training import warmup_cosine


def test_schedule_warms_up_linearly_to_the_peak_then_decays_by_cosine_to_the_final_ratio():
    factors = [warmup_cosine(step, warmup_steps=4, total_steps=20, final_ratio=0.1) for step in range(25)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    decay = factors[4:21]
    assert all(a > b for a, b in zip(decay, decay[1:]))
    assert factors[12] == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the decay: half way down
    assert factors[20:] == pytest.approx([0.1] * 5)


def test_schedule_without_warmup_starts_at_the_peak():
    assert warmup_cosine(0, warmup_steps=0, total_steps=10) == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(warmup_steps=0, total_steps=0),
        dict(warmup_steps=-1, total_steps=5),
        dict(warmup_steps=0, total_steps=5, final_ratio=1.5),
    ],
)
def test_schedule_rejects_impossible_settings(kwargs):
    with pytest.raises(ValueError):
        warmup_cosine(0, **kwargs)
