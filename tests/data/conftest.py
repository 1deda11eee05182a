"""Fixtures of the data tests: empty stand-in files for discovery, and small generated videos (indexed, broken,
and of unusual codecs, pixel formats, sizes and frame timings) for decoding and loading."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch


# --- discovery reads names only: empty files with video extensions stand in for videos --------------------
def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.fixture(scope="session")
def touch() -> Callable[[Path], Path]:
    """``touch(path) -> path``: an empty file, its folders created."""
    return _touch


@pytest.fixture(scope="session")
def video_names() -> Callable[..., list[str]]:
    """``video_names(split)``: the sorted file names of a split's videos."""
    return lambda split: sorted(record.path.name for record in split.records)


def _write_kinetics_root(root: Path, rows: list[str], video: Path | None) -> Path:
    root.mkdir()
    (root / "abc.mp4").write_bytes(video.read_bytes() if video is not None else b"")
    (root / "kinetics.csv").write_text("label,youtube_id,time_start,time_end,split\n" + "\n".join(rows) + "\n")
    return root


@pytest.fixture
def kinetics_root(tmp_path) -> Callable[..., Path]:
    """``kinetics_root(rows, video=None) -> root``: a Kinetics-style folder holding ``abc.mp4`` (a copy of
    ``video``, or an empty file where only names are read) and ``kinetics.csv`` with the header
    ``label,youtube_id,time_start,time_end,split`` and ``rows``."""
    return lambda rows, video=None: _write_kinetics_root(tmp_path / "kinetics", rows, video)


# --- indexed and broken videos --------------------------------------------------------------------------
LEVEL_STEP = 3  # frame t of an "indexed" video is uniformly grey at level 20 + 3 t (t < 70)


def _indexed_video(path: Path, num_frames: int, height: int = 32, width: int = 48) -> Path:
    from cbam3d.data import write_video

    levels = 20 + LEVEL_STEP * np.arange(num_frames, dtype=np.uint8)
    frames = np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3))
    return write_video(path, frames, fps=25)


@pytest.fixture(scope="session")
def frame_numbers() -> Callable[[torch.Tensor], list[int]]:
    """``frame_numbers(clip)``: the index in its video of each frame of a uint8 (T, C, H, W) clip read from an
    indexed video of :func:`videos`."""
    return lambda clip: [int(round((float(frame.float().mean()) - 20) / LEVEL_STEP)) for frame in clip]


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    """``long`` (60 indexed frames, 25 fps) and ``short`` (5), ``wide`` (a left-to-right gradient, 32x64),
    ``half`` (left half white), ``garbage`` (not a video) and ``truncated`` (``long`` cut in half)."""
    write_video = pytest.importorskip("cbam3d.data.encoding").write_video
    folder = tmp_path_factory.mktemp("videos")
    long_video = _indexed_video(folder / "long.mp4", 60)
    gradient = np.broadcast_to(np.linspace(0, 255, 64, dtype=np.uint8)[None, None, :, None], (6, 32, 64, 3))
    half_bright = np.zeros((8, 32, 32, 3), dtype=np.uint8)
    half_bright[:, :, :16] = 255  # a horizontal flip swaps the halves
    garbage = folder / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(long_video.read_bytes()[: long_video.stat().st_size // 2])
    return {
        "long": long_video,
        "short": _indexed_video(folder / "short.mp4", 5),
        "wide": write_video(folder / "wide.mp4", gradient),
        "half": write_video(folder / "half.mp4", half_bright),
        "garbage": garbage,
        "truncated": truncated,
    }


# --- unusual but real videos ----------------------------------------------------------------------------
def _encode_video(
    path: Path,
    *,
    container: str,
    codec: str,
    pix_fmt: str,
    frames: int = 8,
    height: int = 32,
    width: int = 32,
    times_ms: tuple[int, ...] | None = None,
) -> Path:
    av = pytest.importorskip("av")
    with av.open(str(path), mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if times_ms is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for k in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 30 * k, np.uint8), format="rgb24")
            frame = frame.reformat(format=pix_fmt)
            frame.pts = k if times_ms is None else times_ms[k]
            output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def encode_video() -> Callable[..., Path]:
    """``encode_video(path, *, container, codec, pix_fmt, frames=8, height=32, width=32, times_ms=None) -> path``:
    ``frames`` flat grey frames (level 30 k) written with PyAV; ``times_ms`` gives each frame's time."""
    return _encode_video


def _encode_audio_only(path: Path) -> Path:
    av = pytest.importorskip("av")
    with av.open(str(path), mode="w", format="mp4") as output:
        stream = output.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return path


# frame k is shown at VFR_TIMES_MS[k] and is filled with the grey level 30 * k
VFR_TIMES_MS = (0, 10, 20, 200, 210, 900, 910, 1500)


def _truncated(path: Path) -> None:
    full = _encode_video(path, container="mp4", codec="libx264", pix_fmt="yuv420p").read_bytes()
    path.write_bytes(full[: len(full) // 2])


# name -> (writer, readable); the writers take the file's path
UNUSUAL: dict[str, tuple[Callable[[Path], object], bool]] = {
    "vfr.mkv": (
        lambda p: _encode_video(p, container="matroska", codec="libx264", pix_fmt="yuv420p", times_ms=VFR_TIMES_MS),
        True,
    ),
    "ten_bit.mp4": (lambda p: _encode_video(p, container="mp4", codec="libx264", pix_fmt="yuv420p10le"), True),
    "vp9.webm": (lambda p: _encode_video(p, container="webm", codec="libvpx-vp9", pix_fmt="yuv420p"), True),
    "mjpeg.avi": (lambda p: _encode_video(p, container="avi", codec="mjpeg", pix_fmt="yuvj420p"), True),
    "grey.mp4": (lambda p: _encode_video(p, container="mp4", codec="libx264", pix_fmt="gray"), True),
    "odd_size.mkv": (
        lambda p: _encode_video(p, container="matroska", codec="libx264", pix_fmt="yuv444p", height=17, width=33),
        True,
    ),
    "one_frame.mp4": (lambda p: _encode_video(p, container="mp4", codec="libx264", pix_fmt="yuv420p", frames=1), True),
    "zero_bytes.mp4": (lambda p: p.write_bytes(b""), False),
    "truncated.mp4": (_truncated, False),
    "audio_only.mp4": (_encode_audio_only, False),
}


@pytest.fixture(scope="session")
def vfr_times_ms() -> tuple[int, ...]:
    """The frame times (ms) of the variable-frame-rate videos; frame k is filled with the grey level 30 k."""
    return VFR_TIMES_MS


@pytest.fixture(scope="session")
def unusual_videos(tmp_path_factory) -> tuple[Path, set[str]]:
    """Two classes, each with every file of :data:`UNUSUAL` in its training list and two plain videos in its
    test list (UCF101-style lists, so the splits are known). Returns (root, paths of the unreadable files)."""
    root = tmp_path_factory.mktemp("unusual")
    train, test = [], []
    for name in ("a", "b"):
        (root / name).mkdir()
        for file_name, (write, _) in UNUSUAL.items():
            write(root / name / file_name)
            train.append(f"{name}/{file_name}")
        for index in range(2):
            _encode_video(root / name / f"plain{index}.mp4", container="mp4", codec="libx264", pix_fmt="yuv420p")
            test.append(f"{name}/plain{index}.mp4")
    (root / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (root / "testlist01.txt").write_text("\n".join(test) + "\n")
    unreadable = {str(root / path) for path in train if not UNUSUAL[Path(path).name][1]}
    return root, unreadable


@pytest.fixture(params=[name for name, (_, readable) in UNUSUAL.items() if readable])
def readable_unusual_video(request, unusual_videos) -> Path:
    """Each unusual but valid file of :func:`unusual_videos` in turn: variable frame rate, 10-bit, VP9, MJPEG,
    grey, odd-sized and one-frame."""
    root, _ = unusual_videos
    return root / "a" / request.param
