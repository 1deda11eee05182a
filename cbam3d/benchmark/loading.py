"""Data-loading throughput (``cbam3d benchmark --data``): the clips per second one DataLoader worker delivers.

A run writes a realistic test video to a temporary folder (:class:`GeneratedVideo`: by default 320x240, 25 fps,
10 s, H.264 at ffmpeg's default quality with a key frame every 250 frames, a panning texture with moving discs
and sensor noise, so that its bitrate and decoding cost are those of a camera's), or reads the one given, and
draws clips from each loader case in this process with one torch thread, which is what each DataLoader worker
does. Multiply by ``num_workers`` (up to the number of free CPU cores) for a loader's throughput.

Each loader is a :class:`LoaderCase` in :data:`LOADER_CASES`: a name, the settings that describe it, and a
function that turns :class:`LoaderInputs` (the video, a scratch folder for files it prepares, the clip wanted)
into an endless iterator of clips. The training cases, side by side: the loader as it was before the fast
decoding (``videoclip-train-before``: every frame decoded, full-size RGB, resized in torch), today's
(``videoclip-train``), four clips per
decode (``-k4``), the file re-encoded by ``cbam3d prepare`` (``prepared-*``), decord where it is installed
(``decord-*``) and PyTorchVideo's ``LabeledVideoDataset`` (``pytorchvideo-train``). A new loader, measured side
by side with the others and written as one more JSON entry, is one more entry there.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import math
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from cbam3d.utils.threads import torch_threads

__all__ = [
    "LOADER_CASES",
    "ClipSpec",
    "GeneratedVideo",
    "LoaderCase",
    "LoaderInputs",
    "LoaderResult",
    "LoadingSettings",
    "loader_names",
    "make_benchmark_video",
    "measure_loader",
    "run_loading",
]


@dataclass(frozen=True)
class GeneratedVideo:
    """The test video a run writes: ``width`` x ``height`` pixels (even), ``seconds`` at ``fps``, H.264 at
    quality ``crf`` with at most ``keyframe_interval`` frames from one key frame to the next."""

    width: int = 320
    height: int = 240
    seconds: float = 10.0
    fps: int = 25
    keyframe_interval: int = 250
    crf: int = 23


@dataclass(frozen=True)
class ClipSpec:
    """The clips every loader delivers: float (3, ``frames``, ``size``, ``size``), ``sampling_rate`` video frames
    apart."""

    frames: int = 16
    sampling_rate: int = 2
    size: int = 112


@dataclass(frozen=True)
class LoaderInputs:
    """What a loader case is built from: the ``video`` to read, a ``scratch`` folder for files it prepares
    (deleted after the run), the ``clip`` wanted, the number of ``clips`` that will be timed (an evaluation
    loader spreads that many clip positions) and FFmpeg's ``decode_threads`` (0: FFmpeg's choice)."""

    video: Path
    scratch: Path
    clip: ClipSpec
    clips: int
    decode_threads: int


@dataclass(frozen=True)
class LoaderCase:
    """One loader measured by ``benchmark --data``: ``name`` labels its row and JSON entry, ``settings`` say what
    distinguishes it (recorded beside its figures), and ``clips(inputs)`` returns an endless iterator of float
    (3, T, H, W) clips, None for a clip that could not be decoded. The loader is built and any file it needs is
    prepared when the first clip is drawn, in the untimed warm-up. ``needs``: the module it needs beyond PyAV and
    torchvision (an optional one: the case is left out where it is not installed)."""

    name: str
    settings: Mapping[str, Any]
    clips: Callable[[LoaderInputs], Iterator[torch.Tensor | None]]
    needs: str | None = None


def _prepared_video(inputs: LoaderInputs) -> Path:
    """``inputs.video`` re-encoded as ``cbam3d prepare`` does with its defaults (once per run, in the scratch
    folder)."""
    # Deferred: as in _video_clip_dataset.
    from cbam3d.data.prepare import encode_video

    prepared = inputs.scratch / f"prepared{inputs.video.suffix}"
    if not prepared.exists():
        encode_video(inputs.video, prepared)
    return prepared


def _video_clip_dataset(
    inputs: LoaderInputs, *, mode: str, prepared: bool = False, **options: Any
) -> Iterator[torch.Tensor | None]:
    """The clips of a one-video :class:`~cbam3d.data.VideoClipDataset`, in order, round and round: in train mode
    each a fresh random clip, in eval mode ``inputs.clips`` evenly spaced clip positions. ``prepared``: of the
    video re-encoded by ``cbam3d prepare``; ``options``: more of the dataset's keyword arguments."""
    # Deferred: cbam3d.data decodes with PyAV (the video extra), which only --data needs; the attention
    # benchmark runs with torch alone.
    from cbam3d.data.dataset import VideoClipDataset
    from cbam3d.data.records import VideoRecord

    video = _prepared_video(inputs) if prepared else inputs.video
    dataset = VideoClipDataset(
        [VideoRecord(video, 0)],
        frames=inputs.clip.frames,
        sampling_rate=inputs.clip.sampling_rate,
        size=inputs.clip.size,
        mode=mode,
        clips_per_video=1 if mode == "train" else inputs.clips,
        decode_threads=inputs.decode_threads,
        **options,
    )
    for index in itertools.count():
        item = dataset[index % len(dataset)]
        for clip in item if isinstance(item, list) else [item]:
            yield None if clip is None else clip["video"]


def _pytorchvideo_dataset(inputs: LoaderInputs) -> Iterator[torch.Tensor | None]:
    """PyTorchVideo's ``LabeledVideoDataset`` (PyAV, a random clip sampler) on ``inputs.video``: each clip spans
    ``frames * sampling_rate`` frames, subsampled uniformly to ``frames`` and given our training transform at
    full size (random short-side resize, random crop, flip, normalise), the cost of ours."""
    # Deferred: pytorchvideo is an optional peer, measured only here.
    from pytorchvideo.data import LabeledVideoDataset, make_clip_sampler

    from cbam3d.data.decoding import VideoReader
    from cbam3d.data.transforms import train_transform

    clip = inputs.clip
    with VideoReader(inputs.video) as reader:
        fps = reader.info.fps
    transform = train_transform(clip.size)
    dataset = LabeledVideoDataset(
        [(str(inputs.video), {"label": 0})],
        make_clip_sampler("random", clip.frames * clip.sampling_rate / fps),
        decode_audio=False,
        decoder="pyav",
    )
    while True:  # one clip per video and pass
        for item in dataset:
            frames = item["video"]  # float (C, T', H, W), 0..255
            keep = torch.linspace(0, frames.shape[1] - 1, clip.frames).round().long()
            yield transform(frames[:, keep].permute(1, 0, 2, 3).to(torch.uint8))


_DATASET = "cbam3d.data.VideoClipDataset"
_SCALED = "PyAV, seek to the clip, no unreferenced frames before it, scaled in the RGB conversion"
_PREPARED = "the file re-encoded by cbam3d prepare (defaults)"

LOADER_CASES: tuple[LoaderCase, ...] = (
    LoaderCase(
        "videoclip-train-before",
        {
            "dataset": _DATASET,
            "mode": "train",
            "decoding": "PyAV, seek to the clip, every frame decoded, full-size RGB, resized in torch",
        },
        functools.partial(_video_clip_dataset, mode="train", fast_decoding=False),
    ),
    LoaderCase(
        "videoclip-train",
        {"dataset": _DATASET, "mode": "train", "decoding": _SCALED},
        functools.partial(_video_clip_dataset, mode="train"),
    ),
    LoaderCase(
        "videoclip-train-k4",
        {"dataset": _DATASET, "mode": "train", "decoding": _SCALED, "clips_per_decode": 4},
        functools.partial(_video_clip_dataset, mode="train", clips_per_decode=4),
    ),
    LoaderCase(
        "prepared-train",
        {"dataset": _DATASET, "mode": "train", "decoding": _SCALED, "file": _PREPARED},
        functools.partial(_video_clip_dataset, mode="train", prepared=True),
    ),
    LoaderCase(
        "prepared-train-k4",
        {"dataset": _DATASET, "mode": "train", "decoding": _SCALED, "file": _PREPARED, "clips_per_decode": 4},
        functools.partial(_video_clip_dataset, mode="train", prepared=True, clips_per_decode=4),
    ),
    LoaderCase(
        "decord-train",
        {"dataset": _DATASET, "mode": "train", "decoding": "decord, scaled while decoding"},
        functools.partial(_video_clip_dataset, mode="train", decoder="decord"),
        needs="decord",
    ),
    LoaderCase(
        "decord-prepared-train",
        {"dataset": _DATASET, "mode": "train", "decoding": "decord, scaled while decoding", "file": _PREPARED},
        functools.partial(_video_clip_dataset, mode="train", prepared=True, decoder="decord"),
        needs="decord",
    ),
    LoaderCase(
        "pytorchvideo-train",
        {
            "dataset": "pytorchvideo.data.LabeledVideoDataset",
            "mode": "train",
            "decoding": "PyAV (pytorchvideo), random clip sampler, full-size RGB, resized in torch",
        },
        _pytorchvideo_dataset,
        needs="pytorchvideo",
    ),
    LoaderCase(
        "videoclip-eval",
        {"dataset": _DATASET, "mode": "eval", "decoding": _SCALED},
        functools.partial(_video_clip_dataset, mode="eval"),
    ),
)


def loader_names(*, available_only: bool = False) -> list[str]:
    """The names of :data:`LOADER_CASES`, in order; with ``available_only``, of those whose ``needs`` is
    installed."""
    return [
        case.name
        for case in LOADER_CASES
        if not available_only or case.needs is None or importlib.util.find_spec(case.needs) is not None
    ]


def make_benchmark_video(path: str | Path, video: GeneratedVideo = GeneratedVideo(), *, seed: int = 0) -> Path:
    """Write ``video`` to ``path`` (an .mp4 in an existing folder) with camera-like content: a panning texture,
    three moving discs and sensor noise, so that its bitrate and decoding cost are realistic."""
    # Deferred: writing H.264 needs PyAV (the video extra), which only --data needs.
    from cbam3d.data.encoding import write_video

    generator = torch.Generator().manual_seed(seed)
    height, width = video.height, video.width
    noise = torch.rand(1, 3, height // 4 + 8, width // 4 + 8, generator=generator)
    texture = (F.interpolate(noise, scale_factor=4, mode="bicubic")[0].clamp(0, 1) * 200 + 20).permute(1, 2, 0)
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    frames = torch.empty(round(video.seconds * video.fps), height, width, 3, dtype=torch.uint8)
    for t in range(len(frames)):
        frame = torch.roll(texture, (t // 2, t), dims=(0, 1))[:height, :width].clone()
        for k in range(3):
            cx, cy = (40 + 3 * t * (k + 1)) % width, height / 2 + 60 * math.sin(t / (10 + 5 * k) + k)
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (15 + 5 * k) ** 2
            frame[disc] = torch.tensor([255.0 - 60 * k, 80.0 * k, 120.0])
        frames[t] = (frame + 3 * torch.randn(frame.shape, generator=generator)).clamp(0, 255).to(torch.uint8)
    return write_video(
        path,
        frames.numpy(),
        fps=video.fps,
        crf=video.crf,
        deterministic=False,
        keyframe_interval=video.keyframe_interval,
    )


@dataclass
class LoaderResult:
    """The figures of one loader case: clips per second and milliseconds per clip by the wall clock, and per
    second and per clip of this process's CPU time (what one worker achieves on a core of its own, whatever
    else the machine runs); ``settings``: the case's, the clip's and the threads'."""

    loader: str
    settings: dict[str, Any]
    clips_per_s: float
    ms_per_clip: float
    clips_per_cpu_s: float
    cpu_ms_per_clip: float


def _checked(clip: torch.Tensor | None, case: LoaderCase, inputs: LoaderInputs) -> None:
    if clip is None:
        raise ValueError(f"{case.name} could not decode a clip of {inputs.video}")
    expected = (3, inputs.clip.frames, inputs.clip.size, inputs.clip.size)
    if tuple(clip.shape) != expected:
        raise RuntimeError(f"{case.name} delivered a clip of shape {tuple(clip.shape)}, expected {expected}")


def measure_loader(case: LoaderCase, inputs: LoaderInputs) -> LoaderResult:
    """Time ``inputs.clips`` clips of ``case`` after one untimed warm-up clip, in this process (the same random
    clip positions on every run)."""
    torch.manual_seed(0)
    clips = case.clips(inputs)
    _checked(next(clips), case, inputs)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(inputs.clips):
        _checked(next(clips), case, inputs)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    return LoaderResult(
        case.name,
        {**case.settings, **asdict(inputs.clip), "decode_threads": inputs.decode_threads, "torch_threads": 1},
        clips_per_s=inputs.clips / seconds,
        ms_per_clip=1000 * seconds / inputs.clips,
        clips_per_cpu_s=inputs.clips / cpu_seconds,
        cpu_ms_per_clip=1000 * cpu_seconds / inputs.clips,
    )


@dataclass
class LoadingSettings:
    """What one ``benchmark --data`` run measures: the ``loaders`` (names of :data:`LOADER_CASES`) on
    ``video``, or on a ``generated`` one when it is None, ``clips`` timed clips each."""

    video: Path | None = None
    generated: GeneratedVideo = field(default_factory=GeneratedVideo)
    clip: ClipSpec = field(default_factory=ClipSpec)
    clips: int = 40
    decode_threads: int = 1
    loaders: list[str] = field(default_factory=lambda: loader_names(available_only=True))


def run_loading(
    settings: LoadingSettings, on_measured: Callable[[LoaderResult], None] = lambda result: None
) -> list[LoaderResult]:
    """Measure every loader of ``settings`` in turn; ``on_measured`` gets each result as it comes.

    Raises:
        ValueError: ``settings.video`` cannot be decoded, or a loader refuses the clip settings.
    """
    # Deferred: as in _video_clip_dataset.
    from cbam3d.data import decode_error

    unknown = sorted(set(settings.loaders) - set(loader_names()))
    if unknown:
        raise ValueError(f"unknown loaders {unknown}; expected some of {loader_names()}")
    missing = sorted(set(settings.loaders) - set(loader_names(available_only=True)))
    if missing:
        needs = {case.name: case.needs for case in LOADER_CASES}
        raise ValueError(f"loaders {missing} need {sorted({needs[name] for name in missing})}, which is not installed")
    # One torch thread, as DataLoader gives each worker process.
    with tempfile.TemporaryDirectory(prefix="cbam3d-loading-") as scratch, torch_threads(1):
        video = settings.video or make_benchmark_video(Path(scratch) / "benchmark.mp4", settings.generated)
        problem = decode_error(video)
        if problem:
            raise ValueError(problem)
        inputs = LoaderInputs(Path(video), Path(scratch), settings.clip, settings.clips, settings.decode_threads)
        results = []
        for case in LOADER_CASES:
            if case.name in settings.loaders:
                results.append(measure_loader(case, inputs))
                on_measured(results[-1])
    return results
