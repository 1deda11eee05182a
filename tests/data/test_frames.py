"""Videos stored as frame folders (cbam3d.data.frames): read like the video file of the same frames, found by the
class-folder layout in both naming styles, and bad folders refused in one line or skipped with a warning."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av")

from torchvision.io import encode_jpeg, write_file

from cbam3d.data import (
    DEFAULT_FRAME_FPS,
    FrameFolderReader,
    VideoClipDataset,
    VideoDecodeError,
    VideoRecord,
    discover_videos,
    read_clip,
    write_video,
)


def textured_frames(count: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8 frames: smooth gradients that move (little JPEG or H.264 loss), distinct per frame."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(count):
        phase = rng.uniform(0, 2 * np.pi, 3)
        channels = [127 + 100 * np.sin(x / 9 + y / 13 + t / 2 + p) for p in phase]
        frames.append(np.stack(channels, axis=-1))
    return np.clip(frames, 0, 255).astype(np.uint8)


def write_frame_folder(folder: Path, frames: np.ndarray, *, prefix: str = "image_", first: int = 1) -> Path:
    """``folder/<prefix>00001.jpg`` ... one JPEG (quality 95) per (H, W, 3) frame."""
    folder.mkdir(parents=True, exist_ok=True)
    for offset, frame in enumerate(frames):
        jpeg = encode_jpeg(torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1), quality=95)
        write_file(str(folder / f"{prefix}{first + offset:05d}.jpg"), jpeg)
    return folder


def test_a_frame_folder_clip_equals_the_video_clip_of_the_same_frames_up_to_compression_error(tmp_path):
    frames = textured_frames(20)
    folder = write_frame_folder(tmp_path / "clip", frames)
    video = write_video(tmp_path / "clip.mp4", frames, fps=25)
    indices = [0, 3, 3, 7, 19, 25]  # repeats, and an index past the end (the last frame, as for files)
    from_folder, from_video = read_clip(folder, indices), read_clip(video, indices)
    assert from_folder.shape == from_video.shape == (6, 3, 48, 64) and from_folder.dtype == torch.uint8
    truth = torch.from_numpy(frames[[0, 3, 3, 7, 19, 19]]).permute(0, 3, 1, 2).float()
    assert (from_folder.float() - truth).abs().mean() < 2.0  # JPEG's error
    error = (from_folder.float() - from_video.float()).abs().mean(dim=(1, 2, 3))
    assert error.max() < 8.0  # JPEG's and H.264's losses together, a few grey levels
    neighbours = (from_folder[1:3].float() - from_video[[3, 4]].float()).abs().mean()  # frames 3 vs 7
    assert neighbours > 4 * error.max()  # so each frame is matched with its own
    transformed = [
        VideoClipDataset([record], frames=4, sampling_rate=2, size=32, mode="eval")[0]["video"]
        for record in (VideoRecord(folder, 0), VideoRecord(video, 0))
    ]
    assert (transformed[0] - transformed[1]).abs().mean() < 0.1  # normalised units: the same clip


@pytest.mark.parametrize("prefix", ["image_", "img_"])
def test_class_folders_of_frame_folders_are_a_data_set_in_both_naming_styles(tmp_path, prefix):
    """3D-ResNets-PyTorch's CLASS/VIDEO/image_00001.jpg and MMAction2's CLASS/VIDEO/img_00001.jpg."""
    for name in ("jump", "wave"):
        for index in range(3):
            write_frame_folder(tmp_path / name / f"v{index}", textured_frames(3, 16, 16), prefix=prefix)
    (tmp_path / "cbam3d_dataset.json").write_text(json.dumps({"fps": 30}))
    train, val = discover_videos(tmp_path, "train"), discover_videos(tmp_path, "val")
    assert train.class_names == ["jump", "wave"] and len(train) + len(val) == 6
    assert all(record.path.is_dir() and record.fps == 30.0 for record in train.records + val.records)
    with FrameFolderReader(train.records[0].path, fps=train.records[0].fps) as reader:
        assert (reader.info.num_frames, reader.info.fps, reader.info.height) == (3, 30.0, 16)


def test_frame_folders_without_a_stated_frame_rate_take_the_default_with_a_warning(tmp_path):
    for name in ("jump", "wave"):
        write_frame_folder(tmp_path / name / "v0", textured_frames(2, 16, 16))
        write_frame_folder(tmp_path / name / "v1", textured_frames(2, 16, 16))
    with pytest.warns(RuntimeWarning, match=f"taking {DEFAULT_FRAME_FPS:g} fps"):
        split = discover_videos(tmp_path, "train")
    assert {record.fps for record in split.records} == {DEFAULT_FRAME_FPS}


def test_a_frame_folder_with_no_frames_or_a_gap_in_its_numbers_is_refused_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoDecodeError, match=r"holds no frames \(expected image_00001.jpg") as caught:
        FrameFolderReader(tmp_path / "empty")
    assert "\n" not in str(caught.value)
    gap = write_frame_folder(tmp_path / "gap", textured_frames(2, 16, 16))
    write_frame_folder(gap, textured_frames(1, 16, 16), first=4)
    with pytest.raises(VideoDecodeError, match="frame 3 is missing"):
        FrameFolderReader(gap)


def test_a_broken_frame_folder_is_skipped_with_a_warning_as_a_corrupt_video_is(tmp_path):
    good = write_frame_folder(tmp_path / "good", textured_frames(4, 16, 16))
    broken = write_frame_folder(tmp_path / "broken", textured_frames(4, 16, 16))
    (broken / "image_00002.jpg").write_bytes(b"not a jpeg")
    dataset = VideoClipDataset([VideoRecord(broken, 0), VideoRecord(good, 1)], frames=4, size=16, sampling_rate=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        item = dataset[0]
    assert item["label"] == 1 and item["unreadable"] == [str(broken)]
    assert any("skipping unreadable video" in str(w.message) and "broken" in str(w.message) for w in caught)
