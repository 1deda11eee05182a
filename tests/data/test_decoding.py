"""Reading the frames of a clip with PyAV (cbam3d.data.decoding): the requested frames in the requested order, in
containers with and without a frame count, variable frame rates, late first frames, and unusual but valid
codecs, pixel formats and sizes."""

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from cbam3d.data import VideoClipDataset, VideoRecord, read_clip  # noqa: E402
from cbam3d.data.decoding import VideoReader  # noqa: E402


def test_read_clip_returns_the_requested_frames_in_the_requested_order(videos, frame_numbers):
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


def test_containers_without_a_frame_count_are_read_through_their_duration(videos, frame_numbers, tmp_path):
    mkv = remux_to_matroska(videos["long"], tmp_path / "long.mkv")
    dataset = VideoClipDataset([VideoRecord(mkv, 0)], frames=4, sampling_rate=1, size=16, mode="eval")
    assert dataset.clip_indices_for(0) == [28, 29, 30, 31]  # the centre clip of 60 frames
    assert frame_numbers(read_clip(mkv, [0, 30, 59])) == [0, 30, 59]


def test_read_clip_past_the_last_frame_repeats_the_last_frame(videos, frame_numbers):
    assert frame_numbers(read_clip(videos["short"], [3, 4, 7])) == [3, 4, 4]


def grey_levels(clip: torch.Tensor) -> list[int]:
    """The grey level of each frame of a (T, C, H, W) clip, rounded to the nearest multiple of 30, over 30."""
    return [round(level / 30) for level in clip.float().mean(dim=(1, 2, 3)).tolist()]


@pytest.mark.parametrize("container,suffix", [("mp4", "mp4"), ("matroska", "mkv")])
def test_variable_frame_rate_videos_decode_each_index_to_the_frame_nearest_its_time(
    tmp_path, encode_video, vfr_times_ms, container, suffix
):
    """Index i is the frame shown nearest to i / fps: any window decodes, in time order, first frame first."""
    path = encode_video(
        tmp_path / f"vfr.{suffix}", container=container, codec="libx264", pix_fmt="yuv420p", times_ms=vfr_times_ms
    )
    with VideoReader(path) as reader:
        fps, count = reader.info.fps, reader.info.num_frames
    everything = grey_levels(read_clip(path, list(range(count))))
    assert everything[0] == 0 and everything == sorted(everything)
    times = np.array(vfr_times_ms) / 1000
    assert everything == [int(np.abs(times - i / fps).argmin()) for i in range(count)]
    for start in range(count):  # windows that start anywhere, seeking first
        assert grey_levels(read_clip(path, list(range(start, count)))) == everything[start:]


@pytest.mark.parametrize(
    "container, suffix, codec",
    [
        ("mp4", "mp4", "libx264"),
        ("matroska", "mkv", "libx264"),
        ("webm", "webm", "libvpx-vp9"),
        ("mpegts", "mts", "libx264"),
    ],
)
def test_a_video_whose_first_frame_is_shown_after_one_second_has_its_own_frame_count(
    tmp_path, encode_video, container, suffix, codec
):
    """matroska and webm state the end of their timeline, not their length: 8 frames, not 16 with the last
    one repeated."""
    times = tuple(1000 + 125 * k for k in range(8))
    path = encode_video(
        tmp_path / f"late.{suffix}", container=container, codec=codec, pix_fmt="yuv420p", times_ms=times
    )
    with VideoReader(path) as reader:
        assert reader.info.num_frames == 8
    assert grey_levels(read_clip(path, list(range(8)))) == list(range(8))


def test_each_unusual_but_valid_video_gives_a_full_rgb_clip(readable_unusual_video):
    """10-bit, VP9, MJPEG, grey, odd-sized, variable-rate and one-frame files all give (T, 3, H, W) clips."""
    clip = read_clip(readable_unusual_video, [0, 2, 4, 6])
    assert clip.shape[:2] == (4, 3) and clip.dtype == torch.uint8


def test_skipping_unreferenced_frames_before_a_clip_gives_exactly_the_frames_of_a_full_decode(
    make_noise_video, tmp_path
):
    """The pre-roll skips B-frames no frame refers to; the clip's frames are those of decoding every frame."""
    video = make_noise_video(tmp_path / "noise.mp4", frames=80)
    with VideoReader(video) as reader:
        every = dict(reader.frames())
        for start in (0, 1, 9, 30, 47, 61):
            indices = list(range(start, min(start + 14, 80), 2))
            assert torch.equal(reader.read(indices), torch.stack([every[i] for i in indices]))


def test_a_short_side_scales_in_the_rgb_conversion_keeping_the_aspect_ratio(make_noise_video, tmp_path):
    video = make_noise_video(tmp_path / "noise.mp4", frames=10, height=48, width=64)
    scaled = read_clip(video, [2, 5], short_side=24)
    assert tuple(scaled.shape) == (2, 3, 24, 32) and scaled.dtype == torch.uint8
    full = torch.nn.functional.interpolate(read_clip(video, [2, 5]).float(), size=(24, 32), mode="area")
    assert float((scaled.float() - full).abs().mean()) < 12


def test_one_open_file_reads_each_size_as_a_freshly_opened_one(make_noise_video, tmp_path):
    """The reader keeps one scaling context for its file: reading at another size, then at the first again,
    gives exactly what a reader opened for that size alone gives."""
    video = make_noise_video(tmp_path / "noise.mp4", frames=20, height=48, width=64)
    indices = [3, 4, 11]
    with VideoReader(video) as reader:
        reads = [reader.read(indices, short_side=side) for side in (24, 40, None, 24)]
    for side, read in zip((24, 40, None, 24), reads):
        with VideoReader(video) as fresh:
            assert torch.equal(read, fresh.read(indices, short_side=side))


def test_the_decoders_agree_on_the_frames_of_a_clip(make_noise_video, tmp_path):
    """decord (where installed) gives PyAV's frames up to the YUV -> RGB rounding, at full size and scaled."""
    pytest.importorskip("decord")
    from cbam3d.data.decoders import open_video

    video = make_noise_video(tmp_path / "noise.mp4", frames=40, height=48, width=64)
    indices = [0, 7, 8, 21, 39, 39]
    for short_side in (None, 32):
        with open_video(video, decoder="pyav") as pyav, open_video(video, decoder="decord") as decord:
            assert pyav.info == decord.info
            ours, theirs = pyav.read(indices, short_side=short_side), decord.read(indices, short_side=short_side)
        assert ours.shape == theirs.shape
        assert float((ours.float() - theirs.float()).abs().mean()) < (3 if short_side is None else 12)


# --- frame order: every container, with B-frames (frames decoded in another order than they are shown) -------
_BITS = 6  # a frame shows its index in binary: 6 blocks, white for a 1, black for a 0 (indices below 64)


def _frame_showing(index: int, size: int = 48) -> np.ndarray:
    frame = np.zeros((size, size, 3), np.uint8)
    block = size // 3
    for bit in range(_BITS):
        if index >> bit & 1:
            row, column = divmod(bit, 3)
            frame[row * block : (row + 1) * block, column * block : (column + 1) * block] = 255
    frame[2 * block + 2 : 2 * block + 8, (3 * index) % (size - 6) :][:, :6, 1] = 128  # motion, for B-frames
    return frame


def _index_shown(frame: torch.Tensor) -> int:
    """The index a (C, H, W) frame of :func:`_frame_showing` shows (block centres, robust to coding noise)."""
    block = frame.shape[-1] // 3
    centres = [
        frame[0, r * block + block // 2, c * block + block // 2] for r, c in (divmod(b, 3) for b in range(_BITS))
    ]
    return sum(1 << bit for bit, value in enumerate(centres) if value > 127)


def _write_indexed(path, codec: str, b_frames: int, frames: int = 48) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width = stream.height = 48
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = 12
        if codec == "libx264":
            stream.options = {"x264-params": f"bframes={b_frames}:b-pyramid=normal" if b_frames else "bframes=0"}
        else:
            stream.codec_context.max_b_frames = b_frames
        for index in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(_frame_showing(index), format="rgb24")))
        container.mux(stream.encode())


@pytest.mark.parametrize(
    "suffix, codec, b_frames",
    [
        ("mp4", "libx264", 3),
        ("mkv", "libx264", 3),
        ("mov", "libx264", 3),
        ("avi", "libx264", 3),
        ("avi", "mpeg4", 2),
        ("avi", "mpeg4", 0),
        ("mp4", "mpeg4", 2),
        ("mkv", "mpeg4", 2),
        ("webm", "libvpx-vp9", 0),
    ],
)
def test_every_container_gives_the_frames_in_the_order_they_are_shown(tmp_path, suffix, codec, b_frames):
    """Frame i is the i-th frame shown, whether read in one clip, one at a time (seeking) or streamed, also
    where B-frames make the decode order differ from the display order (AVI stores no display times)."""
    if codec not in av.codecs_available:
        pytest.skip(f"FFmpeg here has no {codec} encoder")
    path = tmp_path / f"indexed_{codec}.{suffix}"
    _write_indexed(path, codec, b_frames)
    with av.open(str(path)) as container:
        assert bool(container.streams.video[0].codec_context.has_b_frames) == (b_frames > 0)
    with VideoReader(path) as reader:
        assert reader.info.num_frames == 48
        assert [_index_shown(frame) for frame in reader.read(range(48))] == list(range(48))
        assert [_index_shown(reader.read([i])[0]) for i in (0, 1, 5, 13, 26, 30, 47)] == [0, 1, 5, 13, 26, 30, 47]
        assert [(index, _index_shown(frame)) for index, frame in reader.frames()] == [(i, i) for i in range(48)]
