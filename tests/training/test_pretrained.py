"""Unit properties of the training package: schedule, atomic writes, scoring, sampling, configs, weights."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("lightning")

from cbam3d.inference import ClipSpec, ModelSpec, classification_report, load_checkpoint, video_scores
from cbam3d.inference.checkpoint import build_model, make_info
from cbam3d.training import AtomicCheckpointIO, TrainConfig, load_pretrained, warmup_cosine
from cbam3d.training.lightning import VideoClassifier, topk_correct
from cbam3d.training.seeding import EpochSeededSampler, SeededItems
from cbam3d.training.settings import resolve_config
from cbam3d.utils.atomic import atomic_torch_save, atomic_write
from cbam3d.utils.errors import UsageError

TINY = ModelSpec("resnet3d-10", "cbam", {}, {"widen_factor": 0.125, "no_max_pool": True})
CLIP = ClipSpec(4, 2, 32, (0.43, 0.39, 0.38), (0.23, 0.22, 0.22), eval_resize=36)


# -- learning-rate schedule ---------------------------------------------------------------------------------
def test_schedule_warms_up_linearly_to_the_peak_then_decays_by_cosine_to_the_final_ratio():
    factors = [warmup_cosine(step, warmup_steps=4, total_steps=20, final_ratio=0.1) for step in range(25)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    decay = factors[4:21]
    assert all(a > b for a, b in zip(decay, decay[1:]))
    assert factors[12] == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the decay: half way down
    assert factors[20:] == pytest.approx([0.1] * 5)


def test_schedule_without_warmup_starts_at_the_peak():
    assert warmup_cosine(0, warmup_steps=0, total_steps=10) == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(warmup_steps=0, total_steps=0),
        dict(warmup_steps=-1, total_steps=5),
        dict(warmup_steps=0, total_steps=5, final_ratio=1.5),
    ],
)
def test_schedule_rejects_impossible_settings(kwargs):
    with pytest.raises(ValueError):
        warmup_cosine(0, **kwargs)


# -- atomic writes ------------------------------------------------------------------------------------------
def test_atomic_write_replaces_the_target_with_the_complete_new_content(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    atomic_write(target, lambda file: file.write(b"new content"))
    assert target.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["file.bin"]


def test_a_failed_write_leaves_the_previous_file_intact_and_no_temporary_file(tmp_path):
    target = tmp_path / "last.ckpt"
    atomic_torch_save({"epoch": 1}, target)

    def half_then_crash(file):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_crash)
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_checkpoint_io_writes_a_temporary_file_in_the_same_folder_and_renames_it(tmp_path, monkeypatch):
    renames = []
    real_replace = os.replace

    def recording_replace(source, destination):
        renames.append((Path(source), Path(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", recording_replace)
    target = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, target)
    assert len(renames) == 1 and renames[0][1] == target
    assert renames[0][0].parent == target.parent and renames[0][0] != target
    assert torch.equal(torch.load(target, weights_only=True)["state_dict"]["w"], torch.ones(2))


def test_checkpoint_io_interrupted_mid_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 3}, target)
    real_save = torch.save

    def crashing_save(obj, file, *args, **kwargs):
        real_save({"epoch": 4, "partial": torch.zeros(1000)}, file)
        raise KeyboardInterrupt  # the job is killed after part of the bytes went out

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"epoch": 4}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True) == {"epoch": 3}
    assert os.listdir(tmp_path) == ["last.ckpt"]


# -- scoring ------------------------------------------------------------------------------------------------
def test_topk_correct_counts_rows_whose_label_is_among_the_k_best():
    logits = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, 0])
    assert topk_correct(logits, labels, 1).item() == 1
    assert topk_correct(logits, labels, 2).item() == 2
    assert topk_correct(logits, labels, 5).item() == 3  # k above the class count means every class


def test_classification_report_gives_accuracies_per_class_and_the_confusion_matrix():
    probabilities = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    labels = torch.tensor([0, 1, 1, 2])
    report = classification_report(probabilities, labels, ["a", "b", "c"])
    assert report["top1"] == pytest.approx(0.75)
    assert report["top5"] == 1.0
    assert report["per_class"] == {"a": 1.0, "b": 0.5, "c": 1.0}
    assert report["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]


def test_classification_report_rejects_scores_that_do_not_match_the_class_names():
    with pytest.raises(ValueError, match="class names"):
        classification_report(torch.rand(2, 3), torch.tensor([0, 1]), ["a", "b"])


class ClipsOfVideos(torch.utils.data.Dataset):
    """Eval-style items: clip j of video v holds the constant value v * 10 + j; item 4 is unreadable."""

    def __init__(self, videos: int, clips: int) -> None:
        self.videos, self.clips = videos, clips

    def __len__(self):
        return self.videos * self.clips

    def __getitem__(self, index):
        if index == 4:
            return None
        video, clip = divmod(index, self.clips)
        return {"video": torch.full((1, 1, 1, 1), float(video * 10 + clip)), "label": video % 2, "video_index": video}


class ValueAsLogits(nn.Module):
    """Two-class logits (0, x) for an input of constant value x."""

    def forward(self, video):
        x = video.flatten(1)[:, :1]
        return torch.cat([torch.zeros_like(x), x], dim=1)


def test_video_scores_average_the_softmax_of_every_clip_of_a_video_and_count_unreadable_clips():
    scores = video_scores(ValueAsLogits(), ClipsOfVideos(videos=3, clips=2), num_videos=3, batch_size=3)
    assert scores.skipped_clips == 1
    assert scores.video_indices.tolist() == [0, 1, 2] and scores.labels.tolist() == [0, 1, 0]
    expected = [(torch.tensor([0.0, v]).softmax(0)) for v in (0.0, 1.0)]
    torch.testing.assert_close(scores.probabilities[0], (expected[0] + expected[1]) / 2)
    video_2_clip_1 = torch.tensor([0.0, 21.0]).softmax(0)  # clip 0 of video 2 (item 4) was unreadable
    torch.testing.assert_close(scores.probabilities[2], video_2_clip_1)


# -- the training order and augmentations -------------------------------------------------------------------
class RandomDraw(torch.utils.data.Dataset):
    """Item i is (i, a draw from torch's global generator): a stand-in for random clip positions and crops."""

    def __len__(self):
        return 12

    def __getitem__(self, index):
        return torch.tensor([float(index), torch.rand(()).item()])


def _epoch(workers: int, epoch: int, seed: int = 5) -> torch.Tensor:
    sampler = EpochSeededSampler(12, seed=seed, epoch=lambda: epoch)
    loader = torch.utils.data.DataLoader(SeededItems(RandomDraw()), batch_size=4, sampler=sampler, num_workers=workers)
    return torch.cat(list(loader))


def test_training_order_and_augmentation_depend_on_seed_and_epoch_only_not_on_the_worker_count():
    reference = _epoch(workers=0, epoch=3)
    torch.rand(100)  # the global generator's state does not matter
    torch.testing.assert_close(_epoch(workers=2, epoch=3), reference)
    assert sorted(reference[:, 0].tolist()) == list(map(float, range(12)))
    assert not torch.equal(_epoch(workers=0, epoch=4), reference)
    assert not torch.equal(_epoch(workers=0, epoch=3, seed=6), reference)


# -- settings -----------------------------------------------------------------------------------------------
def test_no_data_means_the_demo_defaults_and_given_values_win():
    demo = resolve_config(TrainConfig())
    assert demo.attention == "cbam" and demo.data is None and demo.horizontal_flip is None
    assert demo.size < 112 and demo.model == "resnet3d-10"
    given = resolve_config(TrainConfig(size=40, attention="none"))
    assert given.size == 40 and given.attention == "none"


def test_a_data_set_gets_the_general_defaults(tmp_path):
    config = resolve_config(TrainConfig(data=tmp_path))
    assert (config.frames, config.size, config.model, config.optimizer) == (16, 112, "resnet3d-18", "sgd")
    assert config.lr == 0.05 and config.weight_decay == 1e-4


def test_a_resumed_run_keeps_its_own_settings_unless_given_again(tmp_path):
    stored = resolve_config(TrainConfig(data=tmp_path, size=64, epochs=7)).to_dict()
    resumed = resolve_config(TrainConfig(epochs=9), resumed=stored)
    assert resumed.data == tmp_path and resumed.size == 64 and resumed.epochs == 9


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(epochs=0), "--epochs"),
        (dict(batch_size=-2), "--batch-size"),
        (dict(lr=0.0), "--lr"),
        (dict(label_smoothing=1.0), "--label-smoothing"),
        (dict(attention="gcnet"), "--attention"),
        (dict(model="resnet3d-11"), "resnet3d-18"),
        (dict(data=Path("/no/such/folder")), "no such directory"),
        (dict(pretrained=Path("/no/such.pth")), "--pretrained"),
        (dict(optimizer="lamb"), "--optimizer"),
    ],
)
def test_bad_settings_raise_a_usage_error_naming_the_setting(change, message):
    with pytest.raises(UsageError, match=message):
        resolve_config(TrainConfig(**change))


# -- checkpoints and starting weights -----------------------------------------------------------------------
def _save_training_checkpoint(path: Path, model: nn.Module, class_names: list[str]) -> None:
    info = make_info(class_names, TINY, CLIP, {"data": None}, [])
    torch.save({"cbam3d": info, "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, path)


def test_load_checkpoint_rebuilds_the_same_network_in_eval_mode(tmp_path):
    model = build_model(TINY, num_classes=3)
    _save_training_checkpoint(tmp_path / "run.ckpt", model, ["a", "b", "c"])
    loaded, info = load_checkpoint(tmp_path / "run.ckpt")
    assert not loaded.training and info["class_names"] == ["a", "b", "c"] and info["clip"]["size"] == 32
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(clip), model.eval()(clip))


def test_load_checkpoint_explains_what_is_wrong_with_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_checkpoint(tmp_path / "missing.ckpt")
    torch.save({"weight": torch.ones(1)}, tmp_path / "plain.pth")
    with pytest.raises(ValueError, match="not a cbam3d training checkpoint"):
        load_checkpoint(tmp_path / "plain.pth")
    (tmp_path / "garbage.ckpt").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="could not be read"):
        load_checkpoint(tmp_path / "garbage.ckpt")


def test_our_checkpoint_as_starting_weights_reinitialises_a_head_of_another_class_count(tmp_path):
    source = build_model(TINY, num_classes=3)
    _save_training_checkpoint(tmp_path / "run.ckpt", source, ["a", "b", "c"])
    target = build_model(TINY, num_classes=5)
    head_before = target.fc.weight.clone()
    report = load_pretrained(target, tmp_path / "run.ckpt")
    assert report.source == "cbam3d checkpoint" and report.head_reinitialised
    assert report.mismatched == ["fc.bias", "fc.weight"] and not report.missing and not report.unexpected
    assert torch.equal(target.fc.weight, head_before)
    torch.testing.assert_close(target.conv1.weight, source.conv1.weight)
    assert "fc re-initialised" in report.summary()


def test_torchvision_video_weights_load_with_only_attention_new():
    torchvision_video = pytest.importorskip("torchvision.models.video")
    reference = torchvision_video.r3d_18(num_classes=400)
    path = Path(os.environ.get("PYTEST_TMP", "/tmp")) / f"tv_r3d18_{os.getpid()}.pth"
    torch.save(reference.state_dict(), path)
    try:
        target = build_model(ModelSpec("r3d_18", "se"), num_classes=7)
        report = load_pretrained(target, path)
    finally:
        path.unlink()
    assert report.source == "torchvision video ResNet" and report.head_reinitialised
    assert report.missing and all(".attention." in key for key in report.missing)
    assert not report.unexpected
    torch.testing.assert_close(
        target.conv1.weight if hasattr(target, "conv1") else target.stem[0].weight, reference.stem[0].weight
    )


def test_2d_weights_are_inflated_into_the_3d_network(tmp_path):
    from cbam3d import models

    source = models.resnet2d(18, num_classes=10)
    torch.save(source.state_dict(), tmp_path / "resnet18_2d.pth")
    target = build_model(ModelSpec("resnet3d-18"), num_classes=10)
    report = load_pretrained(target, tmp_path / "resnet18_2d.pth")
    assert report.source == "2D weights, inflated"
    assert not report.missing and not report.unexpected and not report.mismatched
    kernel = target.conv1.weight  # (C_out, C_in, T, k, k) with the 2D kernel at the temporal centre
    torch.testing.assert_close(kernel[:, :, kernel.shape[2] // 2], source.conv1.weight)
    assert kernel.sum(dim=2).sub(source.conv1.weight).abs().max() < 1e-6


def test_starting_weights_that_fit_nothing_are_refused(tmp_path):
    torch.save({"encoder.weight": torch.ones(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="none of its 1 weights fits"):
        load_pretrained(build_model(TINY, num_classes=2), tmp_path / "other.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="no state dict found"):
        load_pretrained(build_model(TINY, num_classes=2), tmp_path / "list.pth")


def test_import_cbam3d_leaves_training_out_and_inference_needs_no_lightning():
    import subprocess
    import sys

    code = (
        "import sys, cbam3d; assert 'cbam3d.inference' not in sys.modules; "
        "from cbam3d.inference import load_checkpoint, predict_files, evaluate_checkpoint; "
        "assert 'lightning' not in sys.modules, 'lightning imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("world_size", [1, 2])
def test_a_batch_of_only_unreadable_clips_is_skipped_alone_and_joined_with_zero_gradients_under_ddp(world_size):
    """Skipping the step is fine in one process; under DDP the process must still take part in the gradient
    all-reduce that the others wait in, so it returns a zero loss that reaches every parameter."""
    from types import SimpleNamespace

    module = VideoClassifier(TINY, CLIP, ["a", "b"])
    module._trainer = SimpleNamespace(world_size=world_size)  # the one Trainer attribute training_step reads
    empty = {"video": torch.zeros(0, 3, 4, 32, 32), "label": torch.zeros(0, dtype=torch.long), "skipped": 2}
    loss = module.training_step(empty, 0)
    assert module.skipped_clips == 2
    if world_size == 1:
        assert loss is None
        return
    assert loss.item() == 0.0
    loss.backward()
    assert all(p.grad is not None and not p.grad.any() for p in module.parameters())
