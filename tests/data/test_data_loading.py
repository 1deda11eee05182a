"""Decoding clips from tiny generated mp4 files: the right frames, shapes, dtype, normalisation, crops, flips,
and corrupt files skipped with a warning and counted."""

import warnings

import av
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cbam3d.data import (
    KINETICS_MEAN,
    KINETICS_STD,
    VideoClipDataset,
    VideoRecord,
    collate_clips,
    eval_clip_indices,
    read_clip,
    write_video,
)

LEVEL_STEP = 3  # frame t of an "indexed" video is uniformly grey at level 20 + 3 t (t < 70)


def indexed_video(path, num_frames, height=32, width=48):
    levels = 20 + LEVEL_STEP * np.arange(num_frames, dtype=np.uint8)
    frames = np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3))
    return write_video(path, frames, fps=25)


def frame_numbers(clip):
    """Frame index of each frame of a uint8 (T, C, H, W) clip read from an indexed video."""
    return [int(round((float(frame.float().mean()) - 20) / LEVEL_STEP)) for frame in clip]


def half_bright_video(path, num_frames=8, size=32):
    """Left half white, right half black (a horizontal flip swaps them)."""
    frames = np.zeros((num_frames, size, size, 3), dtype=np.uint8)
    frames[:, :, : size // 2] = 255
    return write_video(path, frames)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    long_video = indexed_video(folder / "long.mp4", 60)
    short_video = indexed_video(folder / "short.mp4", 5)
    gradient = np.broadcast_to(np.linspace(0, 255, 64, dtype=np.uint8)[None, None, :, None], (6, 32, 64, 3))
    wide = write_video(folder / "wide.mp4", gradient)
    garbage = folder / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(long_video.read_bytes()[: long_video.stat().st_size // 2])
    return {
        "long": long_video,
        "short": short_video,
        "wide": wide,
        "garbage": garbage,
        "truncated": truncated,
        "half": half_bright_video(folder / "half.mp4"),
    }


def test_read_clip_returns_the_requested_frames_in_the_requested_order(videos):
    indices = [40, 41, 3, 59, 40]  # seeks forward past the start, goes back, repeats
    clip = read_clip(videos["long"], indices)
    assert clip.dtype == torch.uint8 and clip.shape == (5, 3, 32, 48)
    assert frame_numbers(clip) == indices


def remux_to_matroska(source, target):
    """Copy the H.264 stream into an .mkv container, which stores no frame count."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    return target


def test_write_video_starts_a_key_frame_every_keyframe_interval_frames(tmp_path):
    """Uniform frames (no scene cut for the encoder to add a key frame at): key frames exactly every 4 frames."""
    path = write_video(tmp_path / "gop.mp4", np.full((20, 16, 16, 3), 128, dtype=np.uint8), keyframe_interval=4)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = [round(packet.pts * stream.time_base * 25) for packet in container.demux(stream) if packet.is_keyframe]
    assert sorted(keys) == [0, 4, 8, 12, 16]
    with pytest.raises(ValueError, match="keyframe_interval must be at least 1 frame, got 0"):
        write_video(tmp_path / "none.mp4", np.zeros((2, 16, 16, 3), dtype=np.uint8), keyframe_interval=0)


def test_containers_without_a_frame_count_are_read_through_their_duration(videos, tmp_path):
    mkv = remux_to_matroska(videos["long"], tmp_path / "long.mkv")
    dataset = VideoClipDataset([VideoRecord(mkv, 0)], frames=4, sampling_rate=1, size=16, mode="eval")
    assert dataset.clip_indices_for(0) == [28, 29, 30, 31]  # the centre clip of 60 frames
    assert frame_numbers(read_clip(mkv, [0, 30, 59])) == [0, 30, 59]


def test_read_clip_past_the_last_frame_repeats_the_last_frame(videos):
    assert frame_numbers(read_clip(videos["short"], [3, 4, 7])) == [3, 4, 4]


def test_train_items_have_the_documented_shape_dtype_and_keys(videos):
    dataset = VideoClipDataset([VideoRecord(videos["long"], 3)], frames=8, sampling_rate=2, size=24)
    item = dataset[0]
    assert set(item) == {"video", "label", "video_index", "unreadable"}
    assert item["video"].shape == (3, 8, 24, 24) and item["video"].dtype == torch.float32
    assert item["label"] == 3 and item["video_index"] == 0


def test_train_clip_frames_are_strided_and_random(videos):
    dataset = VideoClipDataset([VideoRecord(videos["long"], 0)], frames=4, sampling_rate=3, size=16)
    first_frames = set()
    for _ in range(12):
        indices = dataset.clip_indices_for(0, 0)
        assert [b - a for a, b in zip(indices, indices[1:])] == [3, 3, 3]
        assert indices[0] >= 0 and indices[-1] < 60
        first_frames.add(indices[0])
    assert len(first_frames) > 3


def test_pixels_are_normalised_with_the_kinetics_mean_and_std(videos):
    dataset = VideoClipDataset([VideoRecord(videos["long"], 0)], frames=1, size=16, mode="eval")
    video = dataset[0]["video"]  # the centre frame, index 30
    level = float(read_clip(videos["long"], [30]).float().mean()) / 255
    expected = (level - torch.tensor(KINETICS_MEAN)) / torch.tensor(KINETICS_STD)
    assert torch.allclose(video.mean(dim=(1, 2, 3)), expected, atol=0.05)


def test_eval_items_are_clips_times_crops_per_video_with_evenly_spaced_clips(videos):
    records = [VideoRecord(videos["long"], 0), VideoRecord(videos["short"], 1)]
    dataset = VideoClipDataset(
        records, frames=4, sampling_rate=2, size=16, mode="eval", clips_per_video=3, crops_per_clip=3
    )
    assert len(dataset) == 2 * 3 * 3
    items = [dataset[i] for i in range(len(dataset))]
    assert [item["video_index"] for item in items] == [0] * 9 + [1] * 9
    assert [item["label"] for item in items] == [0] * 9 + [1] * 9
    expected_starts = [clip[0] for clip in eval_clip_indices(60, 4, 2, 3)]
    first_frame_means = [items[3 * clip]["video"][:, 0].mean() for clip in range(3)]
    assert first_frame_means == sorted(first_frame_means)  # later clips of an indexed video are brighter
    assert [dataset.clip_indices_for(0, clip)[0] for clip in range(3)] == expected_starts


def test_three_crops_span_the_long_side_from_left_to_right(videos):
    dataset = VideoClipDataset([VideoRecord(videos["wide"], 0)], frames=2, size=32, mode="eval", crops_per_clip=3)
    means = [float(dataset[i]["video"].mean()) for i in range(3)]
    assert means[0] < means[1] < means[2]  # the frames brighten from left to right


def test_short_videos_still_give_full_clips(videos):
    dataset = VideoClipDataset([VideoRecord(videos["short"], 0)], frames=16, sampling_rate=2, size=16)
    assert dataset[0]["video"].shape == (3, 16, 16, 16)


def test_a_time_window_restricts_clips_to_it(videos):
    # frames 20..39 at 25 fps are seconds 0.8..1.6
    record = VideoRecord(videos["long"], 0, start_sec=0.8, end_sec=1.6)
    dataset = VideoClipDataset([record], frames=4, sampling_rate=2, size=16)
    for _ in range(10):
        indices = dataset.clip_indices_for(0, 0)
        assert indices[0] >= 20 and indices[-1] < 40


def left_is_brighter(video):
    width = video.shape[-1]
    return bool(video[..., : width // 2].mean() > video[..., width // 2 :].mean())


def test_training_flip_can_be_switched_off_for_direction_sensitive_labels(videos):
    records = [VideoRecord(videos["half"], 0)]
    flipping = VideoClipDataset(records, frames=2, size=32, flip=True, train_scale=(1, 1))
    not_flipping = VideoClipDataset(records, frames=2, size=32, flip=False, train_scale=(1, 1))
    torch.manual_seed(0)
    assert {left_is_brighter(flipping[0]["video"]) for _ in range(20)} == {True, False}
    assert all(left_is_brighter(not_flipping[0]["video"]) for _ in range(20))


@pytest.mark.parametrize("name", ["garbage", "truncated"])
def test_corrupt_files_are_skipped_with_a_warning_naming_them_and_counted(videos, name):
    """In eval mode (each item belongs to its video) an unreadable file's item is None; train mode replaces it
    (tests/test_hardening_videos.py)."""
    records = [VideoRecord(videos["long"], 0), VideoRecord(videos[name], 1)]
    dataset = VideoClipDataset(records, frames=2, size=16, mode="eval")
    with pytest.warns(RuntimeWarning, match=f"skipping unreadable video .*{name}.mp4"):
        assert dataset[1] is None
    assert dataset[0] is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per file, still counted every time
        assert dataset[1] is None
    assert dataset.skipped == 2


def test_collate_drops_skipped_items_and_reports_how_many(videos):
    records = [VideoRecord(videos["long"], 0), VideoRecord(videos["garbage"], 1), VideoRecord(videos["short"], 2)]
    dataset = VideoClipDataset(records, frames=4, size=16, mode="eval")
    loader = DataLoader(dataset, batch_size=3, num_workers=1, collate_fn=collate_clips)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the worker process warns; this checks the count that comes back
        (batch,) = list(loader)
    assert batch["video"].shape == (2, 3, 4, 16, 16)
    assert batch["label"].tolist() == [0, 2] and batch["video_index"].tolist() == [0, 2]
    assert batch["skipped"] == 1


def test_collate_of_an_all_skipped_batch_is_empty_but_well_formed():
    batch = collate_clips([None, None])
    assert batch["video"].shape[0] == 0 and batch["video"].ndim == 5 and batch["skipped"] == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "test"}, "mode must be one of"),
        ({"crops_per_clip": 3}, "eval mode only"),
        ({"frames": 0}, "frames must be a positive int"),
        ({"mode": "eval", "crops_per_clip": 2, "transform": lambda x: x}, "one transform per crop"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(videos, kwargs, message):
    with pytest.raises(ValueError, match=message):
        VideoClipDataset([VideoRecord(videos["long"], 0)], **kwargs)


def test_empty_records_are_refused():
    with pytest.raises(ValueError, match="records is empty"):
        VideoClipDataset([])
