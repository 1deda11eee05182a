"""End to end on the data layouts of real data sets: a multi-label CSV run trains, writes val_map and is
evaluated and predicted with; frame-folder data sets (both naming styles) and a Something-Something v2 layout
(tiny webm files) each train one epoch.

The videos are the tiny moving squares of tests/training/conftest.py (32x32, 8 frames, left or right motion).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

L = pytest.importorskip("lightning")
av = pytest.importorskip("av")

from torchvision.io import encode_jpeg, write_file  # noqa: E402

from cbam3d.data import write_video  # noqa: E402
from cbam3d.inference import load_checkpoint  # noqa: E402
from cbam3d.inference.cli import evaluate_main, predict_main  # noqa: E402
from cbam3d.inference.evaluate import evaluate_checkpoint  # noqa: E402
from cbam3d.training.cli import train_main  # noqa: E402

VIDEOS_PER_CLASS = 4


@pytest.fixture
def square_videos(make_moving_square) -> list[tuple[int, np.ndarray]]:
    """``(class index, (T, H, W, 3) frames)`` for VIDEOS_PER_CLASS videos of each direction (0: left, 1: right)."""
    rng = np.random.default_rng(0)
    return [(label, make_moving_square(2 * label - 1, rng)) for label in (0, 1) for _ in range(VIDEOS_PER_CLASS)]


def _write_webm(path: Path, frames: np.ndarray) -> Path:
    with av.open(str(path), mode="w", format="webm") as output:
        stream = output.add_stream("libvpx", rate=Fraction(8))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")
            picture.pts = index
            output.mux(stream.encode(picture))
        output.mux(stream.encode())
    return path


def _csv_data_set(folder: Path, videos, header: str, row) -> Path:
    """``folder`` holding ``videos`` as ``v<index>.mp4`` and ``annotations.csv``: the ``header`` line, then
    ``v<index>.mp4,`` followed by ``row(index, label)`` for each video; the CSV's path."""
    folder.mkdir()
    rows = [header]
    for index, (label, frames) in enumerate(videos):
        write_video(folder / f"v{index}.mp4", frames, fps=8)
        rows.append(f"v{index}.mp4,{row(index, label)}")
    (folder / "annotations.csv").write_text("\n".join(rows) + "\n")
    return folder / "annotations.csv"


def _train(data: Path, output: Path, tiny_run: list[str], *extra: str) -> dict:
    assert train_main(["--data", str(data), "--output", str(output), "--epochs", "1", *tiny_run, *extra]) == 0
    return json.loads((output / "metrics.json").read_text())


def test_a_multi_label_csv_run_trains_writes_val_map_and_is_evaluated_and_predicted_with(
    tmp_path, square_videos, tiny_run, capsys
):
    data = tmp_path / "data"

    def row(index, label):  # every 2nd video also "square"; validation: every 4th from the 3rd, every class
        labels = ["left", "right"][label] + (";square" if index % 2 == 0 else "")
        return f"{labels},{'val' if index % 4 == 2 else 'train'}"

    annotations = _csv_data_set(data, square_videos, "path,labels,split", row)
    (data / "cbam3d_dataset.json").write_text('{"flip_safe": false}')
    metrics = _train(data, tmp_path / "run", tiny_run, "--annotations", str(annotations), "--multi-label")
    assert 0.0 < metrics["val_map"] <= 1.0 and set(metrics["per_class_ap"]) == {"left", "right", "square"}
    assert "val_map" in metrics["history"][0] and "-map" in Path(metrics["best_checkpoint"]).name
    _, info = load_checkpoint(metrics["best_checkpoint"])
    assert info["multi_label"] is True

    assert evaluate_main(["--checkpoint", metrics["best_checkpoint"], "--output", str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    assert "video mAP" in printed and "per-class average precision" in printed
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["map"] == pytest.approx(metrics["val_map"]) and report["multi_label"]
    from_python = evaluate_checkpoint(metrics["best_checkpoint"], output=str(tmp_path / "eval-str"))  # a str folder
    assert (
        Path(from_python["json"]) == tmp_path / "eval-str" / "evaluation.json" and Path(from_python["json"]).is_file()
    )

    assert (
        predict_main([str(data / "v0.mp4"), "--checkpoint", metrics["best_checkpoint"], "--threshold", "0", "--json"])
        == 0
    )
    prediction = json.loads(capsys.readouterr().out)[0]
    assert {entry["label"] for entry in prediction["labels"]} == {"left", "right", "square"}  # all >= 0
    assert all(0.0 <= entry["probability"] <= 1.0 for entry in prediction["labels"])


def test_a_csv_giving_videos_several_labels_is_refused_without_multi_label(
    tmp_path, square_videos, tiny_run, usage_error
):
    data = tmp_path / "data"
    annotations = _csv_data_set(
        data, square_videos, "path,labels", lambda index, label: f"{['left', 'right'][label]};square"
    )
    argv = ["--data", str(data), "--annotations", str(annotations), "--output", str(tmp_path / "run")]
    assert "has 2 labels; train with --multi-label" in usage_error(train_main, [*argv, *tiny_run])


@pytest.mark.parametrize("prefix", ["image_", "img_"])
def test_a_frame_folder_data_set_trains_one_epoch_and_predict_reads_a_frame_folder(
    tmp_path, square_videos, tiny_run, prefix, capsys
):
    """CLASS/VIDEO/image_00001.jpg (3D-ResNets-PyTorch) and CLASS/VIDEO/img_00001.jpg (MMAction2 rawframes)."""
    data = tmp_path / "frames"
    for index, (label, frames) in enumerate(square_videos):
        folder = data / ["left", "right"][label] / f"video{index}"
        folder.mkdir(parents=True)
        for number, frame in enumerate(frames, start=1):
            write_file(str(folder / f"{prefix}{number:05d}.jpg"), encode_jpeg(torch.from_numpy(frame).permute(2, 0, 1)))
    (data / "cbam3d_dataset.json").write_text('{"flip_safe": false, "fps": 8}')
    metrics = _train(data, tmp_path / "run", tiny_run)
    assert metrics["epochs"] == 1 and metrics["val_videos"] >= 2 and not metrics["unreadable_videos"]
    capsys.readouterr()
    assert predict_main([str(data / "left" / "video0"), "--checkpoint", metrics["best_checkpoint"], "--json"]) == 0
    prediction = json.loads(capsys.readouterr().out)[0]
    assert prediction["error"] is None and {entry["label"] for entry in prediction["top"]} == {"left", "right"}


def test_a_something_something_v2_layout_trains_one_epoch(tmp_path, square_videos, tiny_run):
    data = tmp_path / "ssv2"
    (data / "videos").mkdir(parents=True)
    templates = ["Moving [something] from right to left", "Moving [something] from left to right"]
    (data / "labels.json").write_text(
        json.dumps({name.replace("[", "").replace("]", ""): str(i) for i, name in enumerate(templates)})
    )
    entries = {"train": [], "validation": []}
    for index, (label, frames) in enumerate(square_videos):
        _write_webm(data / "videos" / f"{index + 1}.webm", frames)
        split = "validation" if index % 4 == 3 else "train"
        entries[split].append({"id": str(index + 1), "label": "x", "template": templates[label], "placeholders": ["a"]})
    for split, listed in entries.items():
        (data / f"{split}.json").write_text(json.dumps(listed))
    metrics = _train(data, tmp_path / "run", tiny_run)
    assert metrics["epochs"] == 1 and metrics["val_videos"] == 2 and not metrics["unreadable_videos"]
    assert set(metrics["per_class"]) == {"Moving something from right to left", "Moving something from left to right"}
