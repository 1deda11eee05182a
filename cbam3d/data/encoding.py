"""Writing frames to a video file with PyAV (used by the demo data set, the benchmark and the tests)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

__all__ = ["pick_h264_encoder", "rgb_to_yuv420p", "write_video"]


def pick_h264_encoder() -> str:
    for name in ("libx264", "h264", "libopenh264"):
        try:
            av.codec.Codec(name, "w")
        except Exception:
            continue
        return name
    raise RuntimeError("this PyAV build has no H.264 encoder (libx264 / openh264); install the 'av' wheel from PyPI")


def rgb_to_yuv420p(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB (T, H, W, 3) -> planar yuv420p (T, H * 3 // 2, W), BT.601 limited range (FFmpeg's default).

    Done here rather than by FFmpeg's swscale, whose RGB -> YUV conversion (as PyAV calls it) does not give the
    same bytes on every call, which would make the demo data set non-reproducible.
    """
    rgb = frames.astype(np.float32)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 16 + 0.256788 * red + 0.504129 * green + 0.097906 * blue
    blue_diff = 128 - 0.148223 * red - 0.290993 * green + 0.439216 * blue
    red_diff = 128 + 0.439216 * red - 0.367788 * green - 0.071427 * blue
    num_frames, height, width = luma.shape

    def subsample(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(num_frames, height // 2, 2, width // 2, 2).mean(axis=(2, 4)).reshape(num_frames, -1)

    # The chroma planes follow the luma plane byte by byte; rows of ``width`` only when the whole is reshaped
    # (a quarter-size plane is not a whole number of rows when width / 2 is odd).
    planes = np.concatenate([luma.reshape(num_frames, -1), subsample(blue_diff), subsample(red_diff)], axis=1)
    return np.clip(np.floor(planes + 0.5), 0, 255).astype(np.uint8).reshape(num_frames, -1, width)


def write_video(
    path: str | Path,
    frames: np.ndarray,
    *,
    fps: int = 25,
    crf: int = 18,
    deterministic: bool = True,
    keyframe_interval: int | None = None,
) -> Path:
    """Encode ``frames`` as an H.264 / yuv420p mp4 file.

    Args:
        path: the file to write (its folder must exist).
        frames: uint8 RGB frames of shape (T, H, W, 3); H and W must be even (yuv420p halves the chroma).
        fps: frames per second stored in the file.
        crf: x264 constant rate factor (0 = lossless, 18 = visually lossless, 23 = ffmpeg's default).
        deterministic: the same frames always give the same bytes. x264's SIMD code was seen to give run-to-run
            differences (PyAV 18 wheels), so this runs x264 single-threaded without SIMD (about 2x slower to
            encode; decoding is unaffected). The RGB -> YUV conversion is ours for the same reason.
        keyframe_interval: at most this many frames from one key frame to the next (the GOP size; seeking to a
            clip decodes from the key frame before it); None leaves the encoder's default (libx264: 250).
    """
    frames = np.ascontiguousarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be a uint8 array of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
    num_frames, height, width, _ = frames.shape
    if num_frames == 0:
        raise ValueError("frames must hold at least one frame")
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs even frame sizes, got {height}x{width} (H x W)")
    if keyframe_interval is not None and keyframe_interval < 1:
        raise ValueError(f"keyframe_interval must be at least 1 frame, got {keyframe_interval}")
    path = Path(path)
    codec = pick_h264_encoder()
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.thread_count = 1
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
            if deterministic:
                stream.options = {**stream.options, "x264-params": "asm=0"}
        if keyframe_interval is not None:
            stream.codec_context.gop_size = keyframe_interval
        for index, planes in enumerate(rgb_to_yuv420p(frames)):
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
