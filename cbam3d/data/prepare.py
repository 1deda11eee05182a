"""A training-friendly copy of a data set (``cbam3d prepare``): the same layout, classes, splits and annotations,
its videos re-encoded small and quick to seek.

What is copied how: every video a layout names (the records of every split and official fold that
:func:`~cbam3d.data.discover_videos` finds) and every other file with a video extension is re-encoded by
:func:`encode_video` to the same relative path; every other file (split lists, CSVs, ``cbam3d_dataset.json``,
frames stored as images) is copied as is. A layout that :func:`~cbam3d.data.discover_videos` learns to read
needs nothing here.

Re-encoding (:class:`EncodeSettings`): H.264 (libx264), yuv420p, the short side scaled down to
``short_side`` (never up), a key frame every ``keyframe_interval`` frames (a random clip then decodes at most
that many frames before its first), no B-frames and ``tune=fastdecode`` (no CABAC, no deblocking: cheaper to
decode); the defaults were chosen by measurement (docs/data.md). The frame rate and the number of frames are
kept, so a frame index (and a CSV's time window) points at the same moment in the copy; audio is dropped.

Crash safety: each output is written under a temporary name in its folder (``.NAME.cbam3d-part``), decoded
again to check that it holds the source's number of frames (±1), and only then renamed into place and written
to the journal (``.cbam3d_prepare.jsonl`` in the copy's root). A rerun skips the files the journal lists (when
their source is unchanged), redoes any other, and deletes leftover temporary files, so a killed run resumes and
never leaves a half-written file that counts as done. A source video that cannot be decoded is copied as is
(the copy then behaves as the original: the loader skips it with a warning) and listed in the report.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import shutil
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from av.video.reformatter import VideoReformatter

from .decoding import VideoDecodeError, scaled_size
from .discovery import discover_videos
from .encoding import pick_h264_encoder
from .splitting import SPLITS, is_video

__all__ = [
    "JOURNAL_FILE",
    "PART_SUFFIX",
    "EncodeSettings",
    "PrepareReport",
    "check_folders",
    "encode_video",
    "prepare_dataset",
    "videos_to_encode",
]

#: The journal of finished outputs, one JSON object a line, in the copy's root.
JOURNAL_FILE = ".cbam3d_prepare.jsonl"
#: The ending of a file being written; such a file never counts as done and a rerun deletes it.
PART_SUFFIX = ".cbam3d-part"
# Containers that hold H.264 under a name whose ending says so; any other video file (.webm, .avi, .mpg, ...)
# keeps its name (split lists and CSVs name it) and is written as Matroska, which FFmpeg reads whatever the name.
_CONTAINER_BY_SUFFIX = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_FOLDS = (1, 2, 3)


@dataclass(frozen=True)
class EncodeSettings:
    """How :func:`encode_video` re-encodes: the short side in pixels (never enlarged), the most frames from one
    key frame to the next, x264's ``crf`` (quality: 0 lossless, 23 its default), ``preset`` and ``tune``."""

    short_side: int = 160
    keyframe_interval: int = 16
    crf: int = 23
    preset: str = "veryfast"
    tune: str = "fastdecode"

    def __post_init__(self) -> None:
        for name in ("short_side", "keyframe_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an int >= 2, got {value!r}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be in 0..51 (x264's range), got {self.crf}")


@dataclass
class PrepareReport:
    """What :func:`prepare_dataset` did, as paths relative to the source root."""

    encoded: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    #: Source videos that could not be decoded (copied as is), with the reason.
    unreadable: dict[str, str] = field(default_factory=dict)
    #: Outputs that failed the frame-count check (not written), with the reason.
    failed: dict[str, str] = field(default_factory=dict)


def check_folders(source: Path, target: Path) -> None:
    """Raise ValueError (one line) unless ``source`` is a folder and ``target`` is neither it, inside it, nor
    holds it."""
    source, target = Path(source).expanduser().resolve(), Path(target).expanduser().resolve()
    if not source.is_dir():
        raise ValueError(f"source {source} does not exist or is not a folder")
    if target == source:
        raise ValueError(f"the copy must go to another folder than the source ({source})")
    if source in target.parents:
        raise ValueError(f"the copy {target} must not be inside the source {source}")
    if target in source.parents:
        raise ValueError(f"the copy {target} must not hold the source {source}")


def videos_to_encode(source: Path, *, annotations: Path | None = None) -> set[Path]:
    """The video files under ``source`` to re-encode: the records of every split and official fold
    :func:`~cbam3d.data.discover_videos` finds, and every other file with a video extension.

    Raises:
        ValueError: ``source`` is not a data set ``discover_videos`` reads.
    """
    found = {path for path in source.rglob("*") if is_video(path) and path.is_file()}
    for fold in _FOLDS:
        for split in SPLITS:
            try:
                with warnings.catch_warnings():  # missing files are the source's business, not the copy's
                    warnings.simplefilter("ignore")
                    records = discover_videos(source, split, fold=fold, annotations=annotations).records
            except ValueError:
                if fold == 1 and split == "train":
                    raise
                continue
            found.update(record.path for record in records if record.path.is_file())
    return found


def _output_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) scaled down to ``short_side`` (never up), both even as yuv420p needs."""
    if min(height, width) > short_side:
        height, width = scaled_size(height, width, short_side)
    return max(height - height % 2, 2), max(width - width % 2, 2)


def _count_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def encode_video(source: Path, target: Path, settings: EncodeSettings = EncodeSettings()) -> int:
    """Re-encode the video ``source`` to ``target`` (see the module docstring); returns its number of frames.

    The output is written to a temporary file next to ``target``, decoded again and renamed to ``target`` only
    when it holds the source's number of frames (±1).

    Raises:
        VideoDecodeError: ``source`` cannot be decoded (nothing is written).
        RuntimeError: the output does not hold the source's number of frames (nothing is written).
    """
    part = target.with_name(f".{target.name}{PART_SUFFIX}")
    container_format = _CONTAINER_BY_SUFFIX.get(target.suffix.lower(), "matroska")
    try:
        frames = _transcode(source, part, container_format, settings)
        decoded = _count_frames(part)
        if abs(decoded - frames) > 1:
            raise RuntimeError(f"{target}: the copy decodes to {decoded} frames, the source to {frames}")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return frames


def _transcode(source: Path, part: Path, container_format: str, settings: EncodeSettings) -> int:
    try:
        reader = av.open(str(source))
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoDecodeError(f"cannot open video {source}: {error}") from error
    with reader, av.open(str(part), mode="w", format=container_format) as writer:
        if not reader.streams.video:
            raise VideoDecodeError(f"{source} has no video stream")
        in_stream = reader.streams.video[0]
        rate = in_stream.average_rate or in_stream.guessed_rate or Fraction(25)
        height, width = _output_size(in_stream.codec_context.height, in_stream.codec_context.width, settings.short_side)
        out_stream = writer.add_stream(pick_h264_encoder(), rate=rate)
        out_stream.width, out_stream.height, out_stream.pix_fmt = width, height, "yuv420p"
        out_stream.codec_context.gop_size = settings.keyframe_interval
        out_stream.codec_context.max_b_frames = 0
        out_stream.options = {
            "crf": str(settings.crf),
            "preset": settings.preset,
            "tune": settings.tune,
            "x264-params": f"keyint={settings.keyframe_interval}:min-keyint={settings.keyframe_interval}:"
            "scenecut=0:bframes=0",
            "threads": "1",
        }
        count = 0
        # One libswscale context for the file rather than one per frame (frame.reformat's).
        reformatter = VideoReformatter()
        try:
            for frame in reader.decode(in_stream):
                scaled = reformatter.reformat(frame, width=width, height=height, format="yuv420p")
                scaled.pts, scaled.time_base = count, 1 / Fraction(rate)
                for packet in out_stream.encode(scaled):
                    writer.mux(packet)
                count += 1
        except av.FFmpegError as error:
            raise VideoDecodeError(f"cannot decode {source}: {error}") from error
        if count == 0:
            raise VideoDecodeError(f"{source} holds no decodable frames")
        for packet in out_stream.encode():
            writer.mux(packet)
    return count


def _copy_file(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temporary file, keeping its times."""
    part = target.with_name(f".{target.name}{PART_SUFFIX}")
    try:
        shutil.copy2(source, part)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def _same_copy(source: Path, target: Path) -> bool:
    if not target.is_file():
        return False
    a, b = source.stat(), target.stat()
    return a.st_size == b.st_size and int(a.st_mtime) == int(b.st_mtime)


def _stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


class _Journal:
    """The finished outputs of earlier runs: relative path -> the source's (size, mtime) when it was encoded."""

    def __init__(self, target: Path) -> None:
        self.path = target / JOURNAL_FILE
        self.done: dict[str, list[int]] = {}
        if self.path.is_file():
            text = self.path.read_text()
            if text and not text.endswith("\n"):  # a killed run's last line, cut short: end it
                with self.path.open("a") as journal:
                    journal.write("\n")
            for line in text.splitlines():
                try:
                    entry = json.loads(line)
                    self.done[entry["path"]] = entry["source"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # the last line of a killed run may be cut short

    def is_done(self, relative: str, source: Path, target: Path) -> bool:
        return target.is_file() and self.done.get(relative) == _stamp(source)

    def add(self, relative: str, source: Path, frames: int) -> None:
        with self.path.open("a") as journal:
            journal.write(json.dumps({"path": relative, "source": _stamp(source), "frames": frames}) + "\n")
            journal.flush()
            os.fsync(journal.fileno())


def _encode_job(source: Path, target: Path, settings: EncodeSettings) -> tuple[str, int | str]:
    """Run in a worker: ``("encoded", frames)``, ``("unreadable", why)`` or ``("failed", why)``."""
    try:
        return "encoded", encode_video(source, target, settings)
    except VideoDecodeError as error:
        return "unreadable", str(error)
    except RuntimeError as error:
        return "failed", str(error)


def _run_jobs(
    jobs: list[tuple[str, Path, Path]],
    settings: EncodeSettings,
    workers: int,
    on_done: Callable[[str, str, int | str], None],
) -> None:
    """Encode each ``(relative, source, target)`` of ``jobs`` in ``workers`` processes (in this one for 1)."""
    if workers == 1:
        for relative, source, target in jobs:
            on_done(relative, *_encode_job(source, target, settings))
        return
    # spawn: a forked child would inherit the parent's torch and FFmpeg thread pools
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(_encode_job, source, target, settings): relative for relative, source, target in jobs}
        for future in concurrent.futures.as_completed(futures):
            on_done(futures[future], *future.result())


def _progress(total: int, enabled: bool) -> Iterable:
    # Deferred: tqdm comes with the video extra's dependencies but only a run with a progress bar needs it.
    from tqdm import tqdm

    return tqdm(total=total, unit="video", disable=not enabled, dynamic_ncols=True)


def prepare_dataset(
    source: str | Path,
    target: str | Path,
    *,
    settings: EncodeSettings = EncodeSettings(),
    workers: int = 1,
    annotations: str | Path | None = None,
    progress: bool = False,
) -> PrepareReport:
    """Write the training-friendly copy of the data set ``source`` to ``target`` (see the module docstring);
    resumes a run that stopped.

    Args:
        source: the data set's root (any layout :func:`~cbam3d.data.discover_videos` reads).
        target: the copy's root (created if need be).
        settings: how videos are re-encoded.
        workers: processes that encode in parallel.
        annotations: as for :func:`~cbam3d.data.discover_videos`, when the layout needs it.
        progress: show a progress bar (tqdm) on stderr.

    Raises:
        ValueError: the folders overlap, or ``source`` is not a data set ``discover_videos`` reads.
    """
    source, target = Path(source).expanduser().resolve(), Path(target).expanduser().resolve()
    check_folders(source, target)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    annotations = None if annotations is None else Path(annotations).expanduser()
    videos = videos_to_encode(source, annotations=annotations)
    target.mkdir(parents=True, exist_ok=True)
    for leftover in target.rglob(f"*{PART_SUFFIX}"):
        leftover.unlink()
    journal = _Journal(target)
    report = PrepareReport()
    jobs = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source).as_posix()
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if path not in videos:
            if not _same_copy(path, destination):
                _copy_file(path, destination)
            report.copied.append(relative)
        elif journal.is_done(relative, path, destination):
            report.already_done.append(relative)
        else:
            jobs.append((relative, path, destination))
    bar = _progress(len(jobs), progress)

    def on_done(relative: str, outcome: str, detail: int | str) -> None:
        if outcome == "encoded":
            journal.add(relative, source / relative, int(detail))
            report.encoded.append(relative)
        elif outcome == "unreadable":
            _copy_file(source / relative, target / relative)
            report.unreadable[relative] = str(detail)
            warnings.warn(f"copied unreadable video as is: {detail}", RuntimeWarning, stacklevel=2)
        else:
            report.failed[relative] = str(detail)
        bar.update(1)

    try:
        _run_jobs(jobs, settings, workers, on_done)
    finally:
        bar.close()
    return report
