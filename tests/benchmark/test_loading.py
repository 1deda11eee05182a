"""``benchmark --data``: the data loader's clips per second per worker, one JSON entry per loader case."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

pytest.importorskip("av")

from cbam3d.benchmark import cli, loading
from cbam3d.benchmark.cli import benchmark_main
from cbam3d.benchmark.loading import (
    ClipSpec,
    GeneratedVideo,
    LoaderCase,
    LoaderInputs,
    LoadingSettings,
    loader_names,
    make_benchmark_video,
    measure_loader,
    run_loading,
)
from cbam3d.data.decoding import VideoReader

TINY_VIDEO = GeneratedVideo(width=64, height=48, seconds=1.0, keyframe_interval=5)
TINY_CLIP = ["--frames", "4", "--size", "32", "--clips", "2"]


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    return make_benchmark_video(tmp_path_factory.mktemp("loading") / "tiny.mp4", TINY_VIDEO)


def _random_clips(inputs: LoaderInputs):
    """A stand-in loader: random clips of the wanted shape, no decoding."""
    shape = (3, inputs.clip.frames, inputs.clip.size, inputs.clip.size)
    return (torch.rand(shape) for _ in itertools.count())


def test_generated_video_has_the_asked_size_and_length(tiny_video):
    with VideoReader(tiny_video) as reader:
        info = reader.info
    assert (info.width, info.height) == (64, 48)
    assert info.num_frames == 25


def test_data_mode_writes_one_json_entry_per_loader_with_clips_per_second_and_settings(tmp_path, capsys):
    table = benchmark_main(
        ["--data", "--video-size", "64", "48", "--video-seconds", "1", "--gop", "5", *TINY_CLIP]
        + ["--json", str(tmp_path / "loading.json"), "--markdown", str(tmp_path / "loading.md")]
    )
    data = json.loads((tmp_path / "loading.json").read_text())
    assert [entry["loader"] for entry in data["results"]] == loader_names(available_only=True)
    for entry in data["results"]:
        assert entry["clips_per_s"] > 0 and entry["clips_per_cpu_s"] > 0
        assert entry["settings"]["frames"] == 4 and entry["settings"]["size"] == 32
        assert entry["settings"]["torch_threads"] == 1
    assert {entry["settings"]["mode"] for entry in data["results"]} == {"train", "eval"}
    assert data["settings"]["generated"] == {**vars(TINY_VIDEO), "width": 64, "height": 48}
    assert "| videoclip-eval | 4x32x32 / 2 |" in table
    assert table in (tmp_path / "loading.md").read_text()
    assert table in capsys.readouterr().out


def test_a_new_loader_case_is_one_more_entry_measured_beside_the_others(monkeypatch, tiny_video, tmp_path):
    """Adding a LoaderCase to LOADER_CASES is all it takes: --loaders offers it and the JSON has its entry."""
    extra = LoaderCase("random", {"dataset": "torch.rand"}, _random_clips)
    monkeypatch.setattr(loading, "LOADER_CASES", (*loading.LOADER_CASES, extra))
    argv = ["--data", "--video", str(tiny_video), *TINY_CLIP, "--loaders", "videoclip-eval", "random"]
    benchmark_main([*argv, "--json", str(tmp_path / "loading.json")])
    entries = json.loads((tmp_path / "loading.json").read_text())["results"]
    assert [entry["loader"] for entry in entries] == ["videoclip-eval", "random"]
    assert entries[1]["settings"]["dataset"] == "torch.rand" and entries[1]["clips_per_s"] > 0


def test_the_measurement_uses_one_torch_thread_and_restores_the_count(tiny_video):
    threads = []

    def counting(inputs: LoaderInputs):
        for clip in _random_clips(inputs):
            threads.append(torch.get_num_threads())
            yield clip

    before = torch.get_num_threads()
    settings = LoadingSettings(video=tiny_video, clip=ClipSpec(4, 1, 8), clips=3, loaders=["counting"])
    case = LoaderCase("counting", {}, counting)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loading, "LOADER_CASES", (case,))
        (result,) = run_loading(settings)
    assert threads == [1] * 4  # one warm-up clip, three timed
    assert torch.get_num_threads() == before
    assert result.settings["decode_threads"] == 1


@pytest.mark.parametrize(
    "clip, error, message",
    [
        (None, ValueError, "broken could not decode a clip of"),
        (torch.zeros(3, 4, 8, 9), RuntimeError, "expected (3, 4, 8, 8)"),
    ],
)
def test_a_loader_that_fails_or_delivers_the_wrong_shape_is_named(tiny_video, tmp_path, clip, error, message):
    case = LoaderCase("broken", {}, lambda inputs: itertools.repeat(clip))
    inputs = LoaderInputs(tiny_video, tmp_path, ClipSpec(4, 1, 8), clips=2, decode_threads=1)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        measure_loader(case, inputs)


def test_loader_settings_and_defaults_are_those_of_the_former_measurement():
    """16x112x112 clips every 2nd frame, 40 timed clips, one FFmpeg thread, a 320x240 25 fps 10 s video with
    libx264's default key frame interval (the figures stay comparable with earlier runs)."""
    settings = LoadingSettings()
    assert settings.clip == ClipSpec(frames=16, sampling_rate=2, size=112)
    assert (settings.clips, settings.decode_threads) == (40, 1)
    video = settings.generated
    assert (video.width, video.height, video.fps, video.seconds, video.keyframe_interval) == (320, 240, 25, 10.0, 250)
    assert settings.loaders == loader_names(available_only=True)
    assert {"videoclip-train", "videoclip-eval"} <= set(settings.loaders)


def test_the_side_by_side_cases_are_all_there_and_optional_ones_only_where_installed(monkeypatch):
    """The loader before and after the fast decoding, K clips per decode, the prepared file, decord and
    PyTorchVideo; a case whose package is missing is left out of the default list and refused by name."""
    assert loader_names()[:5] == [
        "videoclip-train-before",
        "videoclip-train",
        "videoclip-train-k4",
        "prepared-train",
        "prepared-train-k4",
    ]
    assert {"decord-train", "decord-prepared-train", "pytorchvideo-train"} <= set(loader_names())
    monkeypatch.setattr(loading.importlib.util, "find_spec", lambda name: None)
    assert "decord-train" not in loader_names(available_only=True)
    with pytest.raises(ValueError, match=r"need \['decord'\], which is not installed"):
        run_loading(LoadingSettings(loaders=["decord-train"]))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "--clips", "0"], "--clips must be at least 1, got 0"),
        (["--data", "--frames", "0"], "--frames must be at least 1, got 0"),
        (["--data", "--decode-threads", "-1"], "--decode-threads must be at least 0, got -1"),
        (["--data", "--gop", "0"], "--gop must be at least 1, got 0"),
        (["--data", "--video-size", "65", "48"], "--video-size must be positive even numbers"),
        (["--data", "--video-seconds", "0"], "--video-seconds must give at least one frame"),
        (["--data", "--video-seconds", "inf"], "--video-seconds must give at least one frame"),
        (["--data", "--video", "/no/such/video.mp4"], "--video /no/such/video.mp4: no such file"),
        (["--data", "--loaders", "nope"], "--loaders: invalid choice: 'nope'"),
        (["--data", "--repeats", "3"], "--repeats sets the attention benchmark, not --data's"),
        (["--data", "--quick"], "--quick sets the attention benchmark, not --data's"),
        (["--data", "--device", "cuda"], "--device sets the attention benchmark, not --data's"),
        (["--clips", "3"], "--clips applies with --data only"),
        (["--quick", "--video-size", "64", "48"], "--video-size applies with --data only"),
        (["--data", "--json", "/no/such/folder/loading.json"], "expected a file in an existing folder"),
    ],
)
def test_data_options_out_of_range_or_of_the_other_mode_are_one_line(usage_error, argv, message):
    assert message in usage_error(benchmark_main, argv)


def test_generated_video_options_with_a_given_video_are_one_line(usage_error, tiny_video):
    line = usage_error(benchmark_main, ["--data", "--video", str(tiny_video), "--gop", "5"])
    assert "--gop describes the generated video, not --video" in line


def test_a_file_that_is_not_a_video_is_one_line(usage_error, tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video" * 50)
    line = usage_error(benchmark_main, ["--data", "--video", str(garbage), *TINY_CLIP])
    assert str(garbage) in line and line.startswith("cbam3d benchmark: error:")


def test_data_mode_without_pyav_names_the_extra_to_install(usage_error, monkeypatch):
    def without_pyav(settings, on_measured):
        raise ModuleNotFoundError("No module named 'av'", name="av")

    monkeypatch.setattr(cli, "run_loading", without_pyav)
    line = usage_error(benchmark_main, ["--data"])
    assert "--data needs av" in line and "cbam3d[video]" in line
