"""``cbam3d export``: ONNX (dynamo exporter) and torch.export files that match the PyTorch network, a JSON that
describes their input, and ``cbam3d predict`` on the exports giving the checkpoint's answer."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from cbam3d.inference import export as export_module
from cbam3d.inference.checkpoint import load_checkpoint
from cbam3d.inference.cli import predict_main
from cbam3d.inference.export import ExportedClassifier, export_main, info_path, load_exported
from cbam3d.inference.predict import predict_files


def test_export_writes_the_model_and_a_json_describing_its_input(exported, tiny_checkpoint):
    format, path = exported
    _, checkpoint_info = load_checkpoint(tiny_checkpoint)
    info = json.loads(info_path(path).read_text())
    assert path.is_file() and info["model_format"] == format and info["model_file"] == path.name
    assert info["class_names"] == checkpoint_info["class_names"]
    assert info["clip"] == checkpoint_info["clip"]
    assert info["input"]["layout"] == "N, C, T, H, W" and info["input"]["batch"] == "dynamic"
    assert info["input"]["shape"] == ["N", 3, 4, 32, 32]
    assert "resize the short side to 32" in info["input"]["preprocessing"]
    assert 0 <= info["check"]["max_abs_difference"] <= info["check"]["tolerance"] == 1e-3


def test_the_exported_model_and_its_json_get_the_mode_a_plain_open_gives(exported):
    """Both files go through one atomic write each: 0666 less the umask (0644 here), not a temporary's 0600."""
    _, path = exported
    mask = os.umask(0o022)
    os.umask(mask)
    for written in (path, info_path(path)):
        assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("batch", [1, 5])
def test_exported_logits_match_pytorch_for_any_batch_size(exported, tiny_checkpoint, batch):
    _, path = exported
    model, _ = load_checkpoint(tiny_checkpoint)
    clips = torch.randn(batch, 3, 4, 32, 32, generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        expected = model(clips)
    torch.testing.assert_close(load_exported(path)(clips), expected, atol=1e-4, rtol=1e-4)


def test_predict_on_the_export_gives_the_checkpoint_top_k(exported, tiny_checkpoint, make_noise_video, tmp_path):
    _, path = exported
    videos = [make_noise_video(tmp_path / f"v{seed}.mp4", frames=12, seed=seed) for seed in range(3)]
    from_checkpoint = predict_files(videos, tiny_checkpoint, topk=3, clips=2, device="cpu")
    from_export = predict_files(videos, path, topk=3, clips=2)
    for expected, got in zip(from_checkpoint, from_export):
        assert [name for name, _ in got.top] == [name for name, _ in expected.top]
        assert [p for _, p in got.top] == pytest.approx([p for _, p in expected.top], abs=1e-5)


def test_predict_command_accepts_an_export_in_place_of_a_checkpoint(exported, make_noise_video, tmp_path, capsys):
    _, path = exported
    video = make_noise_video(tmp_path / "clip.mp4", frames=12)
    assert predict_main([str(video), "--checkpoint", str(path), "--topk", "2", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert len(result["top"]) == 2 and result["error"] is None


def test_an_export_above_the_tolerance_fails_with_one_line_and_leaves_nothing(
    tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    exported_call = ExportedClassifier.__call__
    monkeypatch.setattr(ExportedClassifier, "__call__", lambda self, video: exported_call(self, video) + 0.01)
    output = tmp_path / "model.pt2"
    status = export_main(["--checkpoint", str(tiny_checkpoint), "--format", "pt2", "--output", str(output)])
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(error) == 1
    assert "differs from the PyTorch network by up to 0.01" in error[0] and "tolerance 0.001" in error[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--format", "onnx", "--output", "model.pt2"], "must end in .onnx for format onnx"),
        (["--tolerance", "-1", "--output", "model.onnx"], "tolerance must be >= 0"),
        (["--format", "tflite", "--output", "model.onnx"], "invalid choice: 'tflite'"),
    ],
)
def test_bad_export_options_are_one_line_usage_errors(argv, message, tiny_checkpoint, usage_error):
    assert message in usage_error(export_main, ["--checkpoint", str(tiny_checkpoint), *argv])


@pytest.mark.parametrize("where", ["under_a_file", "a_folder"])
def test_an_export_output_that_cannot_be_written_is_refused_before_the_work(
    tiny_checkpoint, tmp_path, usage_error, monkeypatch, where
):
    monkeypatch.setattr(export_module, "load_checkpoint", lambda *a, **k: pytest.fail("the work started"))
    (tmp_path / "taken").write_text("x")
    (tmp_path / "folder.onnx").mkdir()
    output = tmp_path / ("taken/model.onnx" if where == "under_a_file" else "folder.onnx")
    line = usage_error(export_main, ["--checkpoint", str(tiny_checkpoint), "--output", str(output)])
    assert ("is a file, not a folder" if where == "under_a_file" else "is a folder") in line


def _checkpoint_of_another_network(tiny_checkpoint, path):
    """The tiny checkpoint with other weights and other class names."""
    checkpoint = torch.load(tiny_checkpoint, weights_only=False)
    checkpoint["state_dict"] = {key: value * 1.5 for key, value in checkpoint["state_dict"].items()}
    checkpoint["cbam3d"]["class_names"] = ["b_" + name for name in checkpoint["cbam3d"]["class_names"]]
    torch.save(checkpoint, path)
    return path


def test_a_failed_re_export_leaves_the_previous_model_and_sidecar_untouched(
    tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    output = tmp_path / "model.pt2"
    argv = ["--checkpoint", str(tiny_checkpoint), "--format", "pt2", "--output", str(output)]
    assert export_main(argv) == 0
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    exported_call = ExportedClassifier.__call__
    monkeypatch.setattr(ExportedClassifier, "__call__", lambda self, video: exported_call(self, video) + 0.01)
    assert export_main(argv) == 1
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    assert load_exported(output).info["class_names"] == load_checkpoint(tiny_checkpoint)[1]["class_names"]


def test_an_exports_model_and_sidecar_change_together(tiny_checkpoint, tmp_path, monkeypatch, make_noise_video):
    """A kill after the new model is in place but before its JSON is: the model is refused, never run with the
    previous export's class names; an export that completes makes the pair whole again."""
    output = tmp_path / "model.pt2"
    other = _checkpoint_of_another_network(tiny_checkpoint, tmp_path / "other.ckpt")
    assert export_main(["--checkpoint", str(tiny_checkpoint), "--format", "pt2", "--output", str(output)]) == 0

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # stands for the SIGKILL between the two renames

    with monkeypatch.context() as patch:
        patch.setattr(export_module, "atomic_write_json", killed)
        with pytest.raises(KeyboardInterrupt):
            export_module.export_checkpoint(other, output, format="pt2")
    with pytest.raises(ValueError, match="is not the one its model.pt2.json describes"):
        load_exported(output)
    video = make_noise_video(tmp_path / "clip.mp4", frames=12)
    with pytest.raises(ValueError, match="export it again"):
        predict_files([video], output)
    assert export_main(["--checkpoint", str(other), "--format", "pt2", "--output", str(output)]) == 0
    assert load_exported(output).info["class_names"][0].startswith("b_")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.mp4", "model.pt2", "model.pt2.json", "other.ckpt"]


def test_a_sidecar_without_a_model_hash_is_still_read(exported, tmp_path):
    """Exports written before the hash was recorded (version 1) load as before."""
    _, path = exported
    old = tmp_path / path.name
    old.write_bytes(path.read_bytes())
    info = json.loads(info_path(path).read_text())
    del info["model_sha256"]
    info_path(old).write_text(json.dumps({**info, "version": 1}))
    assert load_exported(old).info["version"] == 1


def test_a_missing_checkpoint_is_a_usage_error_naming_it(tmp_path, usage_error):
    argv = ["--checkpoint", str(tmp_path / "none.ckpt"), "--output", str(tmp_path / "m.onnx")]
    assert "none.ckpt: no such file" in usage_error(export_main, argv)


def test_an_export_without_its_json_is_refused_with_one_line(exported, tmp_path):
    _, path = exported
    lonely = tmp_path / path.name
    lonely.write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match=rf"needs its {path.name}\.json"):
        load_exported(lonely)


@pytest.mark.parametrize("exported", ["onnx"], indirect=True)
def test_predict_on_an_onnx_export_without_onnxruntime_names_the_extra(
    exported, make_noise_video, tmp_path, monkeypatch, usage_error
):
    _, path = exported
    find_spec = export_module.importlib.util.find_spec
    monkeypatch.setattr(
        export_module.importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else find_spec(name)
    )
    line = usage_error(
        predict_main, [str(make_noise_video(tmp_path / "clip.mp4", frames=12)), "--checkpoint", str(path)]
    )
    assert "needs onnxruntime: pip install 'cbam3d[export]'" in line


def test_sliding_windows_on_the_export_match_the_checkpoint(exported, tiny_checkpoint, make_noise_video, tmp_path):
    _, path = exported
    video = make_noise_video(tmp_path / "long.mp4", frames=24)
    (from_checkpoint,) = predict_files([video], tiny_checkpoint, topk=2, clips=1, device="cpu", window=1.0)
    (from_export,) = predict_files([video], path, topk=2, clips=1, window=1.0)
    assert [(w.start, w.end) for w in from_export.windows] == [(w.start, w.end) for w in from_checkpoint.windows]
    for expected, got in zip(from_checkpoint.windows, from_export.windows):
        assert [name for name, _ in got.top] == [name for name, _ in expected.top]
        assert [p for _, p in got.top] == pytest.approx([p for _, p in expected.top], abs=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("format", ["onnx", "pt2"])
def test_export_from_cuda_runs_and_matches_the_network(format, tiny_checkpoint, tmp_path, cuda_device):
    """The network loaded on CUDA in channels_last_3d (as trained there) exports through the same writers; the ONNX
    file on onnxruntime (CPU) and the .pt2 program on CUDA give the network's logits (float32, TF32 off)."""
    model, _ = load_checkpoint(tiny_checkpoint, map_location=cuda_device)
    model.to(memory_format=torch.channels_last_3d)
    example = torch.randn(2, 3, 4, 32, 32, device=cuda_device)
    path = tmp_path / f"model.{format}"
    clips = torch.randn(3, 3, 4, 32, 32, device=cuda_device)
    with torch.inference_mode():
        expected = model(clips)
    if format == "onnx":
        export_module._write_onnx(model, example, path)
        session = pytest.importorskip("onnxruntime").InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (logits,) = session.run(None, {export_module.INPUT_NAME: clips.cpu().numpy()})
        logits = torch.from_numpy(logits)
    else:
        export_module._write_pt2(model, example, path)
        with torch.inference_mode():
            logits = torch.export.load(path).module()(clips)
        assert logits.device.type == "cuda"
    torch.testing.assert_close(logits.cpu(), expected.cpu(), atol=1e-4, rtol=1e-4)
