"""Clips cut from labelled video files (cbam3d.data.dataset): shapes, dtype, normalisation, strided and evenly
spaced clips, crops, flips, time windows; unreadable files and clips past a video's end skipped with a warning and
counted (a training item replaced by the next video's), and a training run over unusual files that counts exactly the
unreadable ones."""

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

pytest.importorskip("av")

from cbam3d.data import (
    KINETICS_MEAN,
    KINETICS_STD,
    VideoClipDataset,
    VideoRecord,
    collate_clips,
    discover_videos,
    eval_clip_indices,
    read_clip,
)
from cbam3d.training.cli import train_main


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
    (test_a_training_item_of_an_unreadable_video_is_replaced_by_the_next_video)."""
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


# --- a Kinetics time range against the video's length ------------------------------------------------------
@pytest.fixture
def one_second_video(tmp_path, make_noise_video):
    """8 frames at 8 fps."""
    return make_noise_video(tmp_path / "source" / "abc.mp4", frames=8, fps=8)


def test_a_clip_whose_time_range_starts_after_the_video_ends_is_skipped_with_a_warning(kinetics_root, one_second_video):
    """The 1 s video asked for 5-7 s: not the last frame repeated, a warning naming the file."""
    root = kinetics_root(["walk,abc,5,7,train", "walk,abc,0,1,val"], one_second_video)
    records = discover_videos(root, "train", annotations=root / "kinetics.csv").records
    dataset = VideoClipDataset(records, frames=4, sampling_rate=1, size=16, mode="eval")
    with pytest.warns(RuntimeWarning, match=r"abc\.mp4: the clip's time range starts at 5.0 s, after the video's end"):
        assert dataset[0] is None


def test_a_clip_inside_the_video_loads_without_a_warning(kinetics_root, one_second_video):
    root = kinetics_root(["walk,abc,0.5,1,train", "walk,abc,0,1,val"], one_second_video)
    dataset = VideoClipDataset(
        discover_videos(root, "train", annotations=root / "kinetics.csv").records, frames=4, size=16, mode="eval"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dataset[0]["video"].shape == (3, 4, 16, 16)


# --- unusual and unreadable files in training -------------------------------------------------------------
def test_a_training_item_of_an_unreadable_video_is_replaced_by_the_next_video(unusual_videos):
    """Batches stay whole: the item is read from the following readable video, warned about and counted."""
    root, _ = unusual_videos
    records = [VideoRecord(root / "a" / "zero_bytes.mp4", 0), VideoRecord(root / "b" / "plain0.mp4", 1)]
    dataset = VideoClipDataset(records, frames=2, sampling_rate=1, size=16)
    with pytest.warns(RuntimeWarning, match="zero_bytes.mp4"):
        item = dataset[0]
    assert item["video_index"] == 1 and item["label"] == 1
    batch = collate_clips([item, dataset[1]])
    assert batch["video"].shape[0] == 2
    assert batch["skipped"] == 1 and batch["unreadable"] == [str(records[0].path)]


def test_training_on_unusual_videos_counts_exactly_the_unreadable_ones(unusual_videos, tmp_path, tiny_run):
    """One epoch at batch size 2 with every readable unusual file in the training list many times over (so
    the unreadable ones stay under the limit of a tenth): the run finishes, and metrics.json names exactly the
    unreadable files."""
    root, unreadable = unusual_videos
    readable = [line for line in (root / "trainlist01.txt").read_text().split() if str(root / line) not in unreadable]
    data = tmp_path / "data"
    shutil.copytree(root, data)
    listed = readable * 5 + sorted(str(Path(path).relative_to(root)) for path in unreadable)
    (data / "trainlist01.txt").write_text("\n".join(listed) + "\n")
    unreadable = {str(data / Path(path).relative_to(root)) for path in unreadable}
    output = tmp_path / "run"
    flags = [*tiny_run, "--data", str(data), "--output", str(output), "--epochs", "1", "--batch-size", "2"]
    with pytest.warns(RuntimeWarning, match="cannot be opened and are left out"):
        assert train_main(flags) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert set(metrics["unreadable_videos"]) == unreadable
    assert metrics["skipped_clips"] == 0  # left out before training: no clip replaced, no warning per epoch


def test_k_clips_per_decode_are_k_distinct_clips_of_one_video_within_a_window_twice_a_clip(
    videos, frame_numbers, make_noise_video, tmp_path
):
    """Each of the K clips of one decode has its own position in the window and its own crop and flip."""

    def unscaled(frames):  # a transform of one's own: the decoder gives full-size frames, whose grey level
        return frames.permute(1, 0, 2, 3).float()  # tells their index in the video exactly

    long_video = [VideoRecord(videos["long"], 0)]
    by_index = VideoClipDataset(long_video, frames=4, sampling_rate=2, clips_per_decode=5, transform=unscaled)
    torch.manual_seed(0)
    spans = set()
    for _ in range(6):
        numbers = [frame_numbers(clip) for clip in by_index._frames(0, 0)]
        assert all([b - a for a, b in zip(n, n[1:])] == [2, 2, 2] for n in numbers)
        assert max(n[-1] for n in numbers) - min(n[0] for n in numbers) < 2 * 7  # one window of twice a span
        spans.add(tuple(n[0] for n in numbers))
    assert any(len(set(starts)) > 1 for starts in spans)

    noise = make_noise_video(tmp_path / "noise.mp4", frames=40)
    dataset = VideoClipDataset([VideoRecord(noise, 2)], frames=4, size=16, clips_per_decode=3)
    item = dataset[0]
    assert len(item) == 3 and all(clip["label"] == 2 for clip in item)
    clips = [clip["video"] for clip in item]
    assert all(not torch.equal(a, b) for k, a in enumerate(clips) for b in clips[k + 1 :])


def test_k_clips_per_decode_count_as_k_samples_and_batches_still_mix_videos(videos, make_noise_video, tmp_path):
    records = [VideoRecord(videos["long"], 0), VideoRecord(make_noise_video(tmp_path / "noise.mp4", frames=40), 1)]
    dataset = VideoClipDataset(records, frames=4, size=16, clips_per_decode=2)
    assert len(dataset) == 2
    batch = next(iter(DataLoader(dataset, batch_size=2, collate_fn=collate_clips)))
    assert batch["video"].shape == (4, 3, 4, 16, 16)
    assert batch["video_index"].tolist() == [0, 0, 1, 1] and batch["label"].tolist() == [0, 0, 1, 1]


def test_training_frames_scaled_by_the_decoder_match_frames_resized_in_torch(make_noise_video, tmp_path):
    """The default training path (the decoder scales to the drawn short side) and the one before (full-size
    frames resized in torch) give the same clip up to the two scaling filters; eval mode resizes in torch."""
    record = [VideoRecord(make_noise_video(tmp_path / "square.mp4", frames=40, height=48, width=48), 0)]
    clip = dict(frames=4, size=24, train_scale=(1.0, 1.0), flip=False)  # no random crop or flip: 48 -> 24 -> 24
    scaled, before = VideoClipDataset(record, **clip), VideoClipDataset(record, **clip, fast_decoding=False)
    assert scaled.decoded_short_sides == [24] and before.decoded_short_sides is None
    assert VideoClipDataset(record, frames=4, size=24, mode="eval").decoded_short_sides is None
    torch.manual_seed(0)
    fast = scaled[0]["video"]
    torch.manual_seed(0)
    slow = before[0]["video"]
    assert float((fast - slow).abs().mean()) < 0.25  # normalised pixels (std 1); other clips differ by about 1
