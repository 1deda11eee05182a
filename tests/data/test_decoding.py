"""Unusual but real video files: variable frame rate, other codecs, pixel formats and sizes, broken files
(issue 13). Training keeps its batches whole and counts exactly the unreadable files as skipped."""

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from cbam3d.data import VideoClipDataset, VideoRecord, collate_clips, read_clip  # noqa: E402
from cbam3d.data.decoding import VideoReader  # noqa: E402
from cbam3d.training.cli import train_main  # noqa: E402

# frame k is shown at VFR_TIMES_MS[k] and is filled with the grey level 30 * k
VFR_TIMES_MS = (0, 10, 20, 200, 210, 900, 910, 1500)


def encode(
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
    """Write ``frames`` flat grey frames (level 30 * k) with PyAV; ``times_ms`` gives each frame's time."""
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


def encode_audio_only(path: Path) -> Path:
    with av.open(str(path), mode="w", format="mp4") as output:
        stream = output.add_stream("aac", rate=16000)
        samples = np.zeros((1, 16000), np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return path


def grey_levels(clip: torch.Tensor) -> list[int]:
    """The grey level of each frame of a (T, C, H, W) clip, rounded to the nearest multiple of 30, over 30."""
    return [round(level / 30) for level in clip.float().mean(dim=(1, 2, 3)).tolist()]


@pytest.mark.parametrize("container,suffix", [("mp4", "mp4"), ("matroska", "mkv")])
def test_variable_frame_rate_videos_decode_each_index_to_the_frame_nearest_its_time(tmp_path, container, suffix):
    """Index i is the frame shown nearest to i / fps: any window decodes, in time order, first frame first."""
    path = encode(
        tmp_path / f"vfr.{suffix}", container=container, codec="libx264", pix_fmt="yuv420p", times_ms=VFR_TIMES_MS
    )
    with VideoReader(path) as reader:
        fps, count = reader.info.fps, reader.info.num_frames
    everything = grey_levels(read_clip(path, list(range(count))))
    assert everything[0] == 0 and everything == sorted(everything)
    times = np.array(VFR_TIMES_MS) / 1000
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
    tmp_path, container, suffix, codec
):
    """matroska and webm state the end of their timeline, not their length: 8 frames, not 16 with the last
    one repeated."""
    times = tuple(1000 + 125 * k for k in range(8))
    path = encode(tmp_path / f"late.{suffix}", container=container, codec=codec, pix_fmt="yuv420p", times_ms=times)
    with VideoReader(path) as reader:
        assert reader.info.num_frames == 8
    assert grey_levels(read_clip(path, list(range(8)))) == list(range(8))


# name -> (writer, readable); the writers take the file's path
UNUSUAL = {
    "vfr.mkv": (
        lambda p: encode(p, container="matroska", codec="libx264", pix_fmt="yuv420p", times_ms=VFR_TIMES_MS),
        True,
    ),
    "ten_bit.mp4": (lambda p: encode(p, container="mp4", codec="libx264", pix_fmt="yuv420p10le"), True),
    "vp9.webm": (lambda p: encode(p, container="webm", codec="libvpx-vp9", pix_fmt="yuv420p"), True),
    "mjpeg.avi": (lambda p: encode(p, container="avi", codec="mjpeg", pix_fmt="yuvj420p"), True),
    "grey.mp4": (lambda p: encode(p, container="mp4", codec="libx264", pix_fmt="gray"), True),
    "odd_size.mkv": (
        lambda p: encode(p, container="matroska", codec="libx264", pix_fmt="yuv444p", height=17, width=33),
        True,
    ),
    "one_frame.mp4": (lambda p: encode(p, container="mp4", codec="libx264", pix_fmt="yuv420p", frames=1), True),
    "zero_bytes.mp4": (lambda p: p.write_bytes(b""), False),
    "truncated.mp4": (
        lambda p: p.write_bytes(
            encode(p, container="mp4", codec="libx264", pix_fmt="yuv420p").read_bytes()[: p.stat().st_size // 2]
        ),
        False,
    ),
    "audio_only.mp4": (encode_audio_only, False),
}


def _supported(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def unusual_videos(tmp_path_factory) -> tuple[Path, set[str]]:
    """Two classes, each with every file of :data:`UNUSUAL` in its training list and two plain videos in its
    test list (UCF101-style lists, so the splits are known). Returns (root, names of the unreadable files)."""
    root = tmp_path_factory.mktemp("unusual")
    train, test = [], []
    for name in ("a", "b"):
        (root / name).mkdir()
        for file_name, (write, _) in UNUSUAL.items():
            write(root / name / file_name)
            train.append(f"{name}/{file_name}")
        for index in range(2):
            encode(root / name / f"plain{index}.mp4", container="mp4", codec="libx264", pix_fmt="yuv420p")
            test.append(f"{name}/plain{index}.mp4")
    (root / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (root / "testlist01.txt").write_text("\n".join(test) + "\n")
    unreadable = {str(root / path) for path in train if not UNUSUAL[Path(path).name][1]}
    return root, unreadable


@pytest.mark.parametrize("name", [name for name, (_, readable) in UNUSUAL.items() if readable])
def test_each_unusual_but_valid_video_gives_a_full_rgb_clip(unusual_videos, name):
    """10-bit, VP9, MJPEG, grey, odd-sized, variable-rate and one-frame files all give (T, 3, H, W) clips."""
    root, _ = unusual_videos
    clip = read_clip(root / "a" / name, [0, 2, 4, 6])
    assert clip.shape[:2] == (4, 3) and clip.dtype == torch.uint8


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
    """One epoch at batch size 2: the run finishes, and metrics.json names exactly the unreadable files."""
    root, unreadable = unusual_videos
    output = tmp_path / "run"
    flags = [*tiny_run, "--data", str(root), "--output", str(output), "--epochs", "1", "--batch-size", "2"]
    with pytest.warns(RuntimeWarning, match="skipping unreadable video"):
        assert train_main(flags) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert set(metrics["unreadable_videos"]) == unreadable
    assert metrics["skipped_clips"] >= len(unreadable)


@pytest.mark.parametrize("broken_split", ["train", "val"])
def test_a_split_without_one_decodable_video_is_refused_before_training(tmp_path, tiny_run, capsys, broken_split):
    """Every video of a split unreadable: one line naming the split, exit status 2, nothing trained."""
    root = tmp_path / "data"
    lists = {"train": [], "val": []}
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for split in ("train", "val"):
            path = root / name / f"{split}.mp4"
            if split == broken_split:
                path.write_bytes(b"not a video")
            else:
                encode(path, container="mp4", codec="libx264", pix_fmt="yuv420p")
            lists[split].append(f"{name}/{split}.mp4")
    (root / "trainlist01.txt").write_text("\n".join(lists["train"]) + "\n")
    (root / "testlist01.txt").write_text("\n".join(lists["val"]) + "\n")
    output = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        train_main([*tiny_run, "--data", str(root), "--output", str(output), "--epochs", "1"])
    assert exit_info.value.code == 2
    assert f"none of the 2 videos of the {broken_split} split can be decoded" in capsys.readouterr().err
    assert not (output / "checkpoints").exists()


def test_a_class_with_no_training_video_in_the_split_lists_is_refused_by_name(tmp_path, tiny_run, usage_error):
    root = tmp_path / "data"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(2):
            encode(root / name / f"{index}.mp4", container="mp4", codec="libx264", pix_fmt="yuv420p")
    (root / "trainlist01.txt").write_text("a/0.mp4\na/1.mp4\n")
    (root / "testlist01.txt").write_text("a/0.mp4\nb/0.mp4\n")
    (root / "classInd.txt").write_text("1 a\n2 b\n")
    line = usage_error(train_main, [*tiny_run, "--data", str(root), "--output", str(tmp_path / "run")])
    assert "class(es) b have no training videos" in line
