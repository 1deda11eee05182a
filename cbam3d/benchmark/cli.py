"""``cbam3d benchmark``'s command line: :func:`benchmark_parser` and :func:`benchmark_main`.

Two modes. By default, cbam3d's attention modules against hand-written blocks and the network without attention
(:func:`~cbam3d.benchmark.runs.run`; with ``--peers`` also other packages' blocks and whole training steps,
:func:`~cbam3d.benchmark.runs.run_peers`). With ``--data``, the data loader's clips per second per worker
process on a generated test video (:func:`~cbam3d.benchmark.loading.run_loading`). Both print a markdown table
and write it (``--markdown``) and the results as JSON (``--json``), atomically.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, NamedTuple

import torch

from cbam3d.attention.registry import attention_names

from .loading import GeneratedVideo, LoadingSettings, loader_names, run_loading
from .reports import loading_table, markdown_table, peer_table, rows_of, write_reports
from .runs import AMP_DTYPES, PRESETS, run, run_peers

__all__ = ["benchmark_main", "benchmark_parser"]

_USAGE = """examples:
  cbam3d benchmark --quick                        # 2-core CPU: (8, 64, 8, 28, 28) blocks, model memory
  cbam3d benchmark --device cuda --amp bf16       # the full run on a GPU
  cbam3d benchmark --quick --markdown bench.md --json bench.json
  cbam3d benchmark --quick --threads 1 --peers    # also MONAI, fvcore, timm, torch.compile and training steps
  cbam3d benchmark --data --json loading.json     # data loader clips/s per worker on a generated video
  cbam3d benchmark --data --video clip.mp4 --frames 32 --size 224 --clips 20"""


class _Parser(NamedTuple):
    """The parser and the options that belong to one mode only (the others go with both)."""

    parser: argparse.ArgumentParser
    attention_only: list[argparse.Action]
    data_only: list[argparse.Action]


def _add_attention_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    group = parser.add_argument_group("attention modules (the default mode)")
    options = [
        group.add_argument("--quick", action="store_true", help="the small preset for a few CPU cores"),
        group.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)"),
        group.add_argument("--amp", choices=sorted(AMP_DTYPES), help="run under autocast in this dtype"),
        group.add_argument("--threads", type=int, help="torch.set_num_threads for CPU runs"),
        group.add_argument(
            "--shape",
            type=int,
            nargs=5,
            action="append",
            metavar=("N", "C", "T", "H", "W"),
            help="a block input shape (repeat for several); replaces the preset's",
        ),
        group.add_argument("--dims", type=int, nargs="+", choices=[1, 2, 3], help="block dimensions to time"),
        group.add_argument("--blocks", nargs="+", choices=attention_names(), help="attention blocks to time"),
        group.add_argument("--models", nargs="*", help="networks for models.create_model; none to skip them"),
        group.add_argument(
            "--model-attention", nargs="+", choices=attention_names(), help="attention put into the networks"
        ),
        group.add_argument("--clip", type=int, nargs=5, metavar=("N", "C", "T", "H", "W"), help="the networks' input"),
        group.add_argument("--repeats", type=int, help="timed repeats per block variant (median reported)"),
        group.add_argument(
            "--model-repeats", type=int, help="timed repeats per network variant; 0 measures memory only"
        ),
        group.add_argument("--warmup", type=int, help="untimed runs before timing"),
        group.add_argument(
            "--kernel-size", type=int, help="CBAM's spatial kernel, the same for the naive block (default 7)"
        ),
    ]
    peers = parser.add_argument_group("peers and training steps (attention mode)")
    return options + [
        peers.add_argument(
            "--peers",
            action="store_true",
            help="also measure the hand-written blocks under torch.compile, MONAI's ChannelSELayer, fvcore's "
            "SqueezeExcitation, timm's CbamModule and EcaModule (those installed) and whole training steps",
        ),
        peers.add_argument(
            "--no-compile-blocks", action="store_true", help="leave out the compiled hand-written blocks"
        ),
        peers.add_argument(
            "--compile-networks", action="store_true", help="also time the training steps under torch.compile (slow)"
        ),
        peers.add_argument("--step-model", help="the network of the training steps (default r3d_18)"),
        peers.add_argument(
            "--step-clip", type=int, nargs=5, metavar=("N", "C", "T", "H", "W"), help="its input (default 2 3 8 56 56)"
        ),
        peers.add_argument("--step-repeats", type=int, help="timed training steps per variant (default 5)"),
        peers.add_argument("--step-attention", nargs="+", choices=attention_names(), help="default: every attention"),
    ]


def _add_data_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    defaults, video = LoadingSettings(), GeneratedVideo()
    group = parser.add_argument_group("data loading (--data)")
    group.add_argument(
        "--data",
        action="store_true",
        help="measure the data loader instead of the attention modules: clips per second that one DataLoader "
        "worker process (one torch thread) decodes and transforms, for each loader",
    )
    return [
        group.add_argument("--video", type=Path, help="time this video file instead of a generated one"),
        group.add_argument(
            "--video-size",
            type=int,
            nargs=2,
            metavar=("WIDTH", "HEIGHT"),
            help=f"the generated video's frame size, even numbers (default {video.width} {video.height})",
        ),
        group.add_argument(
            "--video-seconds",
            type=float,
            help=f"the generated video's length (default {video.seconds:g}; {video.fps} fps)",
        ),
        group.add_argument(
            "--gop",
            type=int,
            help="at most this many frames from one key frame to the next in the generated video "
            f"(default {video.keyframe_interval})",
        ),
        group.add_argument("--frames", type=int, help=f"frames per clip (default {defaults.clip.frames})"),
        group.add_argument(
            "--sampling-rate", type=int, help=f"step between clip frames (default {defaults.clip.sampling_rate})"
        ),
        group.add_argument("--size", type=int, help=f"clip height and width (default {defaults.clip.size})"),
        group.add_argument("--clips", type=int, help=f"timed clips per loader (default {defaults.clips})"),
        group.add_argument(
            "--decode-threads",
            type=int,
            help=f"FFmpeg threads per file, 0 for FFmpeg's choice (default {defaults.decode_threads}, as in a worker)",
        ),
        group.add_argument("--loaders", nargs="+", choices=loader_names(), help="the loaders to time (default: all)"),
    ]


def _build_parser() -> _Parser:
    parser = argparse.ArgumentParser(
        prog="cbam3d benchmark",
        description="Benchmark cbam3d's attention modules against hand-written blocks and the network without "
        "attention: forward and forward+backward time, memory kept for backward. With --data, the data "
        "loader's clips per second per worker process instead.",
        epilog=_USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    attention_only = _add_attention_options(parser)
    data_only = _add_data_options(parser)
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the markdown table here")
    return _Parser(parser, attention_only, data_only)


def benchmark_parser() -> argparse.ArgumentParser:
    """The parser of ``cbam3d benchmark``."""
    return _build_parser().parser


def _flags_set(actions: Sequence[argparse.Action], args: argparse.Namespace) -> list[str]:
    """The flags among ``actions`` that the command line set."""
    return [action.option_strings[0] for action in actions if getattr(args, action.dest) != action.default]


def _mode_problem(args: argparse.Namespace, options: _Parser) -> str | None:
    """An option of the other mode, or a generated video's option with --video, as a one-line message."""
    if args.data:
        wrong = _flags_set(options.attention_only, args)
        if wrong:
            return f"{wrong[0]} sets the attention benchmark, not --data's"
        generated_only = (
            ("--video-size", args.video_size),
            ("--video-seconds", args.video_seconds),
            ("--gop", args.gop),
        )
        given = [flag for flag, value in generated_only if value is not None]
        if args.video is not None and given:
            return f"{given[0]} describes the generated video, not --video"
    else:
        wrong = _flags_set(options.data_only, args)
        if wrong:
            return f"{wrong[0]} applies with --data only"
    return None


def _range_problem(args: argparse.Namespace) -> str | None:
    """The first option out of range, as a one-line message, or None."""
    lowest = {
        "--repeats": (args.repeats, 0),
        "--model-repeats": (args.model_repeats, 0),
        "--warmup": (args.warmup, 0),
        "--threads": (args.threads, 1),
        "--frames": (args.frames, 1),
        "--sampling-rate": (args.sampling_rate, 1),
        "--size": (args.size, 1),
        "--clips": (args.clips, 1),
        "--decode-threads": (args.decode_threads, 0),
        "--gop": (args.gop, 1),
    }
    for flag, (value, low) in lowest.items():
        if value is not None and value < low:
            return f"{flag} must be at least {low}, got {value}"
    for flag, shapes in (("--shape", args.shape or []), ("--clip", [args.clip] if args.clip else [])):
        for shape in shapes:
            if min(shape) < 1:
                return f"{flag} sizes must be positive, got {' '.join(map(str, shape))}"
    if args.video_size and (min(args.video_size) < 2 or any(side % 2 for side in args.video_size)):
        return f"--video-size must be positive even numbers (H.264 halves the colour planes), got {args.video_size}"
    frames = None if args.video_seconds is None else args.video_seconds * GeneratedVideo.fps
    if frames is not None and not (math.isfinite(frames) and frames >= 1):
        return f"--video-seconds must give at least one frame at {GeneratedVideo.fps} fps, got {args.video_seconds:g}"
    return None


def _path_problem(args: argparse.Namespace) -> str | None:
    """A device that is not there, a --video that is not a file, or an output that cannot be written, or None."""
    try:
        device = torch.device(args.device)
    except RuntimeError as error:
        return f"--device {args.device!r}: {str(error).splitlines()[0]}"
    if device.type == "cuda" and not torch.cuda.is_available():
        return f"--device {args.device}: no CUDA device is available"
    if args.video is not None and not args.video.is_file():
        return f"--video {args.video}: no such file"
    for flag, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path is not None and (path.is_dir() or not path.parent.is_dir()):
            return f"{flag} {path}: expected a file in an existing folder"
    return None


def _given_values(**values: Any) -> dict[str, Any]:
    """The settings the command line gave (argparse leaves the others None)."""
    return {name: value for name, value in values.items() if value is not None}


class _Report(NamedTuple):
    """What a mode printed and what is written: its table, its results and the settings it ran with."""

    table: str
    results: list
    settings: dict[str, Any]


def _attention_benchmark(args: argparse.Namespace) -> _Report:
    overrides = _given_values(
        block_shapes=[tuple(s) for s in args.shape] if args.shape else None,
        dims=args.dims,
        blocks=args.blocks,
        models=args.models,
        model_attention=args.model_attention,
        clip=tuple(args.clip) if args.clip else None,
        repeats=args.repeats,
        model_repeats=args.model_repeats,
        warmup=args.warmup,
        kernel_size=args.kernel_size,
        device=args.device,
        amp=args.amp,
        peers=args.peers or None,
        compile_blocks=False if args.no_compile_blocks else None,
        compile_networks=args.compile_networks or None,
        step_model=args.step_model,
        step_clip=tuple(args.step_clip) if args.step_clip else None,
        step_repeats=args.step_repeats,
        step_attention=args.step_attention,
    )
    settings = replace(PRESETS["quick" if args.quick else "full"], **overrides)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run(settings)
    table = markdown_table(results)
    if settings.peers:
        peers = run_peers(settings)
        table += "\n\n" + peer_table(peers)
        results += peers
    described = {**asdict(settings), "threads": torch.get_num_threads(), "torch": torch.__version__}
    return _Report(table, results, described)


def _loading_benchmark(args: argparse.Namespace) -> _Report:
    defaults = LoadingSettings()
    size = dict(zip(("width", "height"), args.video_size or ()))
    generated = replace(
        defaults.generated, **size, **_given_values(seconds=args.video_seconds, keyframe_interval=args.gop)
    )
    clip = replace(defaults.clip, **_given_values(frames=args.frames, sampling_rate=args.sampling_rate, size=args.size))
    settings = replace(
        defaults,
        video=args.video,
        generated=generated,
        clip=clip,
        **_given_values(clips=args.clips, decode_threads=args.decode_threads, loaders=args.loaders),
    )
    results = run_loading(settings, lambda result: print(rows_of(loading_table([result]))))
    described = {**asdict(settings), "torch": torch.__version__, "av": importlib.metadata.version("av")}
    return _Report(loading_table(results), results, described)


def benchmark_main(argv: Sequence[str] | None = None) -> str:
    """Run the benchmark command line and return the markdown table it printed."""
    options = _build_parser()
    parser = options.parser
    args = parser.parse_args(argv)
    problem = _mode_problem(args, options) or _range_problem(args) or _path_problem(args)
    if problem:
        parser.error(problem)
    try:
        report = _loading_benchmark(args) if args.data else _attention_benchmark(args)
    except ValueError as error:  # an option the modules, networks or loaders refuse (kernel size, model name ...)
        parser.error(str(error).splitlines()[0])
    except ModuleNotFoundError as error:
        if not args.data:
            raise
        parser.error(f"--data needs {error.name}, which is not installed; install it with pip install 'cbam3d[video]'")
    print(f"\n{report.table}")
    write_reports(report.table, report.results, report.settings, markdown=args.markdown, json_path=args.json)
    return report.table
