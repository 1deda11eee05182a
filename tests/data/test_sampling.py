"""Clip sampling: which frame indices a clip takes, in training (random) and evaluation (evenly spaced)."""

import pytest
import torch

from cbam3d.data import clip_span, eval_clip_indices, train_clip_indices


def test_clip_span_counts_first_and_last_frame():
    assert clip_span(16, 2) == 31
    assert clip_span(1, 5) == 1


def test_train_clips_are_strided_and_stay_inside_the_video():
    generator = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(200):
        indices = train_clip_indices(50, 8, 3, generator=generator)
        assert len(indices) == 8
        assert all(b - a == 3 for a, b in zip(indices, indices[1:]))
        assert indices[0] >= 0 and indices[-1] < 50
        starts.add(indices[0])
    # every start position 0..50-22 can occur, so 200 draws reach most of the 29
    assert len(starts) > 20 and min(starts) == 0 and max(starts) == 50 - clip_span(8, 3)


def test_train_clips_respect_a_time_window_offset():
    generator = torch.Generator().manual_seed(1)
    for _ in range(50):
        indices = train_clip_indices(20, 4, 2, offset=100, generator=generator)
        assert indices[0] >= 100 and indices[-1] < 120


def test_eval_clips_are_deterministic_evenly_spaced_and_symmetric():
    clips = eval_clip_indices(100, 4, 2, 3)
    assert clips == eval_clip_indices(100, 4, 2, 3)
    starts = [clip[0] for clip in clips]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert max(gaps) - min(gaps) <= 1  # evenly spaced up to rounding
    assert starts[0] == pytest.approx(100 - 1 - clips[-1][-1], abs=1)  # same margin at both ends
    assert all(clip[-1] < 100 for clip in clips)


def test_one_eval_clip_is_the_centre_clip():
    (clip,) = eval_clip_indices(101, 11, 1, 1)
    assert clip[0] == 45 and clip[-1] == 55


def test_short_videos_give_full_length_clips_in_time_order():
    """A video shorter than the clip span still gives `frames` indices, non-decreasing, covering it."""
    for indices in (train_clip_indices(5, 16, 2), eval_clip_indices(5, 16, 2, 2)[1]):
        assert len(indices) == 16
        assert indices == sorted(indices)
        assert indices[0] == 0 and indices[-1] == 4


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_non_positive_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="positive int"):
        train_clip_indices(10, bad, 1)
    with pytest.raises(ValueError, match="positive int"):
        eval_clip_indices(10, 4, 1, bad)
