"""Data-loading throughput: clips per second that one loader process decodes and transforms.

Run ``python -m cbam3d.benchmark.loading`` (``--help`` for options). It writes a realistic test video (320x240,
25 fps, 10 s, H.264 at ffmpeg's default quality, a panning texture with moving shapes and sensor noise) to a
temporary folder and times :class:`VideoClipDataset` items on it in this process with one torch thread, which
is what each DataLoader worker does. Multiply by ``num_workers`` (up to the number of free CPU cores) for a
loader's throughput.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cbam3d.data.dataset import VideoClipDataset
from cbam3d.data.encoding import write_video
from cbam3d.data.records import VideoRecord

__all__ = ["main", "make_benchmark_video", "measure_throughput"]


def make_benchmark_video(
    path: str | Path, *, seconds: float = 10.0, fps: int = 25, width: int = 320, height: int = 240, seed: int = 0
) -> Path:
    """Write a video with camera-like content (so its bitrate and decoding cost are realistic)."""
    rng = np.random.default_rng(seed)
    num_frames = int(round(seconds * fps))
    noise = torch.rand(1, 3, height // 4 + 8, width // 4 + 8, generator=torch.Generator().manual_seed(seed))
    texture = F.interpolate(noise, scale_factor=4, mode="bicubic")[0]
    texture = (texture.clamp(0, 1) * 200 + 20).permute(1, 2, 0).numpy()
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        frame = np.roll(texture, (t // 2, t), axis=(0, 1))[:height, :width].copy()
        for k in range(3):  # a few moving discs
            cx, cy = (40 + 3 * t * (k + 1)) % width, height / 2 + 60 * np.sin(t / (10 + 5 * k) + k)
            frame[(xx - cx) ** 2 + (yy - cy) ** 2 < (15 + 5 * k) ** 2] = (255 - 60 * k, 80 * k, 120)
        frames[t] = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
    return write_video(path, frames, fps=fps, crf=23, deterministic=False)


def measure_throughput(
    path: str | Path,
    *,
    mode: str = "train",
    frames: int = 16,
    sampling_rate: int = 2,
    size: int = 112,
    clips: int = 40,
    decode_threads: int = 1,
) -> dict[str, float]:
    """Time ``clips`` items of a one-video :class:`VideoClipDataset` (after one warm-up item).

    Returns:
        ``clips_per_s`` and ``ms_per_clip`` (wall clock), and ``clips_per_cpu_s`` and ``cpu_ms_per_clip`` (this
        process's CPU time: what one worker achieves on a core of its own, whatever else the machine runs).
        In eval mode each item is a different clip position.
    """
    clips_per_video = 1 if mode == "train" else clips
    dataset = VideoClipDataset(
        [VideoRecord(Path(path), 0)],
        frames=frames,
        sampling_rate=sampling_rate,
        size=size,
        mode=mode,
        clips_per_video=clips_per_video,
        decode_threads=decode_threads,
    )
    dataset[0]
    start, start_cpu = time.perf_counter(), time.process_time()
    for i in range(clips):
        item = dataset[i % len(dataset)]
        if item is None or item["video"].shape != (3, frames, size, size):
            raise RuntimeError(f"could not load clips of {path}")
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    return {
        "clips_per_s": clips / seconds,
        "ms_per_clip": 1000 * seconds / clips,
        "clips_per_cpu_s": clips / cpu_seconds,
        "cpu_ms_per_clip": 1000 * cpu_seconds / clips,
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, help="time this video instead of a generated 320x240 25 fps 10 s one")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    parser.add_argument("--sampling-rate", type=int, default=2, help="step between clip frames (default 2)")
    parser.add_argument("--size", type=int, default=112, help="output height and width (default 112)")
    parser.add_argument("--clips", type=int, default=40, help="clips timed per mode (default 40)")
    parser.add_argument("--decode-threads", type=int, default=1, help="FFmpeg threads (default 1, as in a worker)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # what DataLoader does in each worker process
    with tempfile.TemporaryDirectory() as folder:
        video = args.video or make_benchmark_video(Path(folder) / "benchmark.mp4")
        results = {
            mode: measure_throughput(
                video,
                mode=mode,
                frames=args.frames,
                sampling_rate=args.sampling_rate,
                size=args.size,
                clips=args.clips,
                decode_threads=args.decode_threads,
            )
            for mode in ("train", "eval")
        }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(
            f"{args.frames}x{args.size}x{args.size} clips, sampling rate {args.sampling_rate}, one process, "
            f"1 torch thread, {args.decode_threads} decoding thread(s):"
        )
        for mode, result in results.items():
            print(
                f"  {mode:5s}: {result['clips_per_s']:6.1f} clips/s wall clock "
                f"({result['ms_per_clip']:.1f} ms per clip), "
                f"{result['clips_per_cpu_s']:6.1f} clips per CPU second ({result['cpu_ms_per_clip']:.1f} ms)"
            )
    return results


if __name__ == "__main__":
    main()
