"""Exporting a trained network out of Python: ONNX (the dynamo exporter) or ``torch.export`` (``.pt2``).

``export_checkpoint`` writes the model and, beside it, ``<model file>.json``: everything needed to feed it
without cbam3d (class names, clip frames and sampling rate, resize rule and crop size, mean and std, the input
layout) and the largest difference between the export and the PyTorch network, measured by running the
written file (onnxruntime for ONNX, ``torch.export.load`` for ``.pt2``) on random clips. The batch dimension
is dynamic; frames, height and width are the checkpoint's.

``load_exported`` reads such a pair back for ``cbam3d predict``: no network code is needed for ONNX.

The model and its JSON change together or not at all: the model is written and checked under a temporary
name, the JSON records the model file's SHA-256, and only then are both moved into place. A failed check
leaves the previous pair untouched, and a model whose JSON belongs to another export (a kill between the two
renames) is refused by ``load_exported`` rather than run with another network's class names.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from cbam3d.utils.atomic import atomic_write, atomic_write_json, check_output_folder

from .checkpoint import is_multi_label, load_checkpoint

__all__ = [
    "EXPORT_FORMATS",
    "ExportMismatchError",
    "ExportReport",
    "ExportedClassifier",
    "export_checkpoint",
    "export_main",
    "export_parser",
    "info_path",
    "is_exported_model",
    "load_exported",
]

EXPORT_FORMATS = {"onnx": ".onnx", "pt2": ".pt2"}
EXPORT_INFO_FORMAT = "cbam3d.exported-video-classifier"
EXPORT_INFO_VERSION = 2
"""Version 2 adds ``model_sha256``; version 1 files (without it) are still read, unchecked."""
INPUT_NAME, OUTPUT_NAME = "video", "logits"
INPUT_LAYOUT = "N, C, T, H, W"
#: Clips in the example the network is traced with (2: a batch of 1 would be specialised to a constant).
TRACE_BATCH = 2
#: Clips in the check, different from TRACE_BATCH so that it also checks the batch dimension is dynamic.
CHECK_BATCH = 3


class ExportMismatchError(RuntimeError):
    """The exported model's output differs from the PyTorch network's by more than the tolerance."""


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_checkpoint` wrote and measured."""

    model: Path
    info: Path
    max_abs_difference: float
    tolerance: float


def info_path(model_path: str | os.PathLike) -> Path:
    """The JSON written beside an exported model: ``<model path>.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def is_exported_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an exported model (``.onnx`` or ``.pt2``) rather than a training checkpoint."""
    return Path(path).suffix in EXPORT_FORMATS.values()


def _random_clips(clip: dict[str, Any], *, batch: int, seed: int) -> torch.Tensor:
    """(batch, 3, frames, size, size) float32 clips on the scale of normalised frames."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, clip["frames"], clip["size"], clip["size"], generator=generator)


def _require_export_extra(*modules: str, purpose: str) -> None:
    """Raise a one-line ValueError naming the ``export`` extra when one of ``modules`` is not installed."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(f"{purpose} needs {', '.join(missing)}: pip install 'cbam3d[export]'")


def _onnx_writer(model: nn.Module, example: torch.Tensor) -> Callable[[IO[bytes]], Any]:
    """``model`` exported to ONNX (traced with ``example``), as a function that writes it to a binary file."""
    _require_export_extra("onnx", "onnxscript", "onnxruntime", purpose="exporting to ONNX")
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: batch},),
        verbose=False,
    )
    return lambda file: file.write(program.model_proto.SerializeToString())


def _pt2_writer(model: nn.Module, example: torch.Tensor) -> Callable[[IO[bytes]], Any]:
    """``model`` exported by torch.export (traced with ``example``), as a function that writes it to a binary
    file."""
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    return lambda file: torch.export.save(program, file)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_output(output: Path, format: str) -> None:
    """Refuse, before any work, an output the model cannot be written to."""
    if output.suffix != EXPORT_FORMATS[format]:
        raise ValueError(f"output {output} must end in {EXPORT_FORMATS[format]} for format {format}")
    if output.is_dir():
        raise ValueError(f"output {output} is a folder: give the model file's path")
    check_output_folder(output.parent)


class ExportedClassifier:
    """An exported network and its JSON: ``classifier(video)`` maps (N, C, T, H, W) float32 clips, prepared as
    ``classifier.info["clip"]`` says, to (N, K) float32 logits, on the CPU.

    Args:
        path: the model file. info: its JSON, read from beside it when None. format: ``"onnx"`` or ``"pt2"``;
            None: by the file's suffix.

    Attributes:
        info: the JSON written beside the model (``class_names``, ``clip``, ``input``, ``check``, ...).
    """

    def __init__(
        self, path: str | os.PathLike, *, info: dict[str, Any] | None = None, format: str | None = None
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"exported model {self.path}: no such file")
        self.info = _read_info(self.path) if info is None else info
        recorded = self.info.get("model_sha256")
        if recorded is not None and recorded != _sha256(self.path):
            raise ValueError(
                f"exported model {self.path} is not the one its {info_path(self.path).name} describes (an export "
                "was interrupted between the two files): export it again"
            )
        is_onnx = self.path.suffix == EXPORT_FORMATS["onnx"] if format is None else format == "onnx"
        if is_onnx:
            _require_export_extra("onnxruntime", purpose=f"running {self.path.name}")
            # Deferred: onnxruntime comes with the optional ``export`` extra.
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            self._session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self._module = None
        else:
            self._session = None
            with self.path.open("rb") as file:  # from a file object: torch.export.load goes by a path's suffix
                self._module = torch.export.load(file).module()

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        video = video.detach().to("cpu", torch.float32).contiguous()
        if self._session is not None:
            (logits,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: video.numpy()})
            return torch.from_numpy(logits)
        with torch.inference_mode():
            return self._module(video)


def _read_info(model_path: Path) -> dict[str, Any]:
    path = info_path(model_path)
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(
            f"exported model {model_path} needs its {path.name} (written beside it by cbam3d export): {error}"
        ) from error
    if not isinstance(info, dict) or info.get("format") != EXPORT_INFO_FORMAT:
        raise ValueError(f"{path} was not written by cbam3d export (no format {EXPORT_INFO_FORMAT!r})")
    return info


def load_exported(path: str | os.PathLike) -> ExportedClassifier:
    """An exported ``.onnx`` or ``.pt2`` model with the JSON beside it.

    Raises:
        FileNotFoundError: no such model file. ValueError: its JSON is missing, was not written by cbam3d or
            describes another model file (by its SHA-256), or onnxruntime is not installed for an ``.onnx``.
    """
    return ExportedClassifier(path)


def _describe(info: dict[str, Any], *, format: str, model_file: str) -> dict[str, Any]:
    """The JSON beside the model, without the check's figures."""
    clip = info["clip"]
    return {
        "format": EXPORT_INFO_FORMAT,
        "version": EXPORT_INFO_VERSION,
        "model_file": model_file,
        "model_format": format,
        "class_names": list(info["class_names"]),
        "clip": dict(clip),
        "input": {
            "name": INPUT_NAME,
            "layout": INPUT_LAYOUT,
            "shape": ["N", 3, clip["frames"], clip["size"], clip["size"]],
            "dtype": "float32",
            "batch": "dynamic",
            "preprocessing": (
                f"RGB frames; a clip is {clip['frames']} frames taken every {clip['sampling_rate']} frames; "
                f"resize the short side to {clip['eval_resize']} pixels (bilinear, antialiased), crop "
                f"{clip['size']} x {clip['size']} at the centre, scale to [0, 1], then subtract mean and divide "
                "by std per channel (R, G, B)"
            ),
        },
        "output": {
            "name": OUTPUT_NAME,
            "layout": "N, K",
            "meaning": "logits; a sigmoid of each gives its class's probability (multi-label)"
            if is_multi_label(info)
            else "logits; softmax over K gives probabilities",
        },
        "model": dict(info["model"]),
        "multi_label": is_multi_label(info),
    }


def export_checkpoint(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    *,
    format: str = "onnx",
    tolerance: float = 1e-3,
) -> ExportReport:
    """Export a training checkpoint's network to ``output`` and check the written file against PyTorch.

    Args:
        checkpoint: a ``.ckpt`` written by ``cbam3d train``.
        output: the model file to write (``.onnx`` or ``.pt2``, matching ``format``); ``<output>.json``
            is written beside it.
        format: ``"onnx"`` (the dynamo exporter) or ``"pt2"`` (``torch.export``).
        tolerance: the largest absolute difference of the logits allowed between the export and the network.

    Raises:
        FileNotFoundError, ValueError: a missing or unusable checkpoint, an unknown format, a suffix that does
            not match the format, an output that cannot be written, a negative tolerance.
        ExportMismatchError: the export's logits differ by more than ``tolerance``; nothing is written, and a
            previous export at ``output`` is left as it was.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {sorted(EXPORT_FORMATS)}, got {format!r}")
    output = Path(output)
    _check_output(output, format)
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    model, info = load_checkpoint(checkpoint, map_location="cpu")
    example = _random_clips(info["clip"], batch=TRACE_BATCH, seed=0)
    write = (_onnx_writer if format == "onnx" else _pt2_writer)(model, example)
    description = _describe(info, format=format, model_file=output.name)
    clips = _random_clips(info["clip"], batch=CHECK_BATCH, seed=1)
    with torch.inference_mode():
        expected = model(clips)

    def check_written(written: Path) -> None:
        """Run the written file; refuse it unless it gives the network's logits; record its check and hash."""
        difference = float((ExportedClassifier(written, info=description, format=format)(clips) - expected).abs().max())
        if not difference <= tolerance:
            raise ExportMismatchError(
                f"the {format} export of {checkpoint} differs from the PyTorch network by up to {difference:.3g} "
                f"(tolerance {tolerance:g}); nothing written"
            )
        runtime = "onnxruntime" if format == "onnx" else "torch.export.load"
        description["model_sha256"] = _sha256(written)
        description["check"] = {
            "max_abs_difference": difference,
            "tolerance": tolerance,
            "clips": CHECK_BATCH,
            "compared": f"logits of the written file ({runtime}) against the PyTorch network, random clips",
            "torch": torch.__version__,
        }

    # Model first, then its JSON: in between, the hash tells a reader the pair does not belong together.
    atomic_write(output, write, check=check_written)
    atomic_write_json(description, info_path(output))
    return ExportReport(output, info_path(output), description["check"]["max_abs_difference"], tolerance)


def export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cbam3d export",
        description="Export a training checkpoint's network to ONNX (dynamo exporter) or torch.export (.pt2), "
        "with a dynamic batch dimension, and write OUTPUT.json beside it with the class names and "
        "the clip preparation (frames, sampling rate, resize, crop, mean, std, layout N, C, T, H, W). "
        "The written file is run (onnxruntime for ONNX) against the PyTorch network on random clips "
        "and the largest absolute difference of the logits is printed; above --tolerance the export "
        "fails (exit status 1) and nothing is left written.",
    )
    parser.add_argument(
        "--checkpoint", type=Path, required=True, metavar="CKPT", help="a checkpoint written by cbam3d train"
    )
    parser.add_argument("--format", choices=sorted(EXPORT_FORMATS), default="onnx", help="default: onnx")
    parser.add_argument(
        "--output", type=Path, required=True, metavar="PATH", help="the model file to write (.onnx or .pt2)"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-3,
        metavar="TOL",
        help="largest absolute difference of the logits allowed; default: 1e-3",
    )
    return parser


def export_main(argv: Sequence[str] | None = None) -> int:
    """``cbam3d export``: exit status 0, 1 when the check fails, 2 for bad input."""
    parser = export_parser()
    args = parser.parse_args(argv)
    try:
        report = export_checkpoint(args.checkpoint, args.output, format=args.format, tolerance=args.tolerance)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    except ExportMismatchError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {report.model} and {report.info}")
    print(f"largest absolute difference from PyTorch: {report.max_abs_difference:.3g} (tolerance {report.tolerance:g})")
    return 0
